package rules

// dockerd (moby/moby) version gates that touch userns-remap. Sources are
// relative to github.com/moby/moby at the tag named; docs/rules.md has one
// row per rule.
var (
	DockerDaemonJSONDecode = def("docker.daemon_json_decode", "23.0",
		"daemon.json is decoded whole: a UTF-8, UTF-16LE or UTF-16BE byte order mark is honoured, invalid UTF-8 is refused (`failed to decode configuration JSON at offset N`), a whitespace-only file is {}, and anything after the object is refused; before, json.Decoder read the first value only: an empty file fails with `EOF`, a BOM is refused, data after the object is ignored",
		"daemon/config/config.go getConflictFreeConfiguration, v23.0.0 (v20.10.24: json.NewDecoder(…).Decode)")
	DockerValidate = def("docker.validate", "23.0",
		"`dockerd --validate [--config-file F]` loads, merges and validates daemon.json and prints `configuration OK` on stderr",
		"cmd/dockerd/daemon.go start (v23.0.0), daemon/command/daemon.go (docker-v29)")
	DockerValidateRemap = def("docker.validate_remap", "26.0",
		"`dockerd --validate` also resolves the userns-remap account and reads its subordinate ranges (and for \"default\" without dockremap runs adduser/useradd and usermod); before, it checks the file only",
		"cmd/dockerd/daemon_linux.go loadCLIPlatformConfig → daemon.RemapContainerdNamespaces → setupRemappedRoot, v26.0.0 (commit 3a617e5463)")
	DockerGraphRefused = def("docker.graph_refused", "23.0",
		"the deprecated \"graph\" key (and --graph/-g) is refused: `the \"graph\" config file option is deprecated; use \"data-root\" instead`; before, it set the data root",
		"daemon/config/config.go Validate, v23.0.0")
	DockerGraphUnknown = def("docker.graph_unknown", "24.0",
		"\"graph\" is no configuration option any more (`the following directives don't match any configuration option: graph`), and -g/--graph no dockerd flag (`unknown shorthand flag: 'g' in -g`)",
		"daemon/config/config.go findConfigurationConflicts; cmd/dockerd/config.go installConfigFlags, v24.0.0")
	DockerErrorsLowercase = def("docker.idtools_lowercase", "24.0",
		"the texts of dockremap creation errors start lower-case (`error adding user`, `couldn't create subordinate ID ranges`, `unable to add subuid range to user`); before: `Error adding user`, `Couldn't …`, `Unable …`",
		"pkg/idtools/usergroupadd_linux.go, v24.0.0 vs v23.0.18")
	DockerUsergroup = def("docker.usergroup", "28.0",
		"subordinate ranges are read by moby/sys/user: every line owned by the user's name or uid counts, in file order (before: the uid's lines, and the name's only when the uid has none); malformed lines are read leniently; a missing range in either file says `no subuid ranges found`; dockremap's new ranges start after root's own lines only; `container ID N cannot be mapped` is lower-case",
		"internal/usergroup/lookup_unix.go lookupSubRangesFile and add_linux.go findNextUIDRange, v28.0.0 (commit 24ad9bef9d); pkg/idtools/idtools_unix.go lookupSubUIDRanges, v27.5.1")
	DockerIDMappingsText = def("docker.id_mappings_text", "29.7",
		"a remap user without ranges fails with `error creating ID mappings: …`; before: `Can't create ID mappings: …`",
		"daemon/daemon_unix.go setupRemappedRoot, docker-v29.7.0 (commit 759df84c6b)")
	DockerC8dStore = def("docker.c8d_store", "24.0",
		"\"features\": {\"containerd-snapshotter\": true} switches to the containerd image store (before, the key is accepted and has no effect); until 25.0 that store has no ID mapping",
		"daemon/daemon.go UsesSnapshotter, v24.0.0")
	DockerC8dRemap = def("docker.c8d_remap", "25.0",
		"the containerd image store works under userns-remap by walking and chowning every container's snapshot (a cost per container; BuildKit builds break, moby#47377)",
		"daemon/containerd/image_snapshot_unix.go remapSnapshot, v25.0.0 (commit 0313544f4a)")
	DockerC8dRefused = def("docker.c8d_refused", "29.0",
		"with userns-remap, an explicit containerd-snapshotter refuses start (`containerd-snapshotter is explicitly enabled, but is not compatible with userns remapping`), the default containerd image store is turned off (graphdriver store), and a snapshotter name as storage-driver is refused (`graphdriver is explicitly enabled but \"overlayfs\" is not registered`)",
		"daemon/command/daemon_linux.go setPlatformOptions and daemon/image_store_choice.go determineImageStoreChoice, docker-v29.0.0 (commit e1722eb8d8)")
	DockerWritableCgroups = def("docker.writable_cgroups", "28.0",
		"a container with `--security-opt writable-cgroups[=BOOL]` (either value) fails to start under userns-remap: `option WritableCgroups conflicts with user namespaces and rootless mode`",
		"daemon/oci_linux.go withMounts, v28.0.0 (commit f8187c0214)")
	DockerFeatureFlag = def("docker.feature_flag", "28.0",
		"`--feature NAME[=BOOL]` sets features from the command line (and conflicts with \"features\" in daemon.json)",
		"cmd/dockerd/config.go, v28.0.0 (commit f13c08246d)")
)
