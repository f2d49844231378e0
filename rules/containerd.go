package rules

// containerd's CRI and the OCI runtimes it runs.
var (
	ContainerdCRIUserns = def("containerd.cri_userns", "1.7",
		"the CRI plugin reads the pod's user namespace options (hostUsers: false); ≤1.6 ignores them and runs the pod in the host user namespace",
		"containerd pkg/cri/server/sandbox_run_linux.go sandboxContainerSpec (no userns code in v1.6.36)")
	ContainerdCRIMountIdmapRefused = def("containerd.cri_mount_idmap_refused", "1.7.1",
		"containerd 1.7 refuses CRI mounts with uid/gid mappings (`idmap mounts not yet supported, but they were requested for: %q`); 1.7.0 mounts them without mappings",
		"containerd pkg/cri/opts/spec_linux_opts.go WithMounts (v1.7.35; commit 7de8629be)")
	ContainerdIdmap = def("containerd.idmap", "2.0",
		"the CRI reports RuntimeHandlers[].features.user_namespaces per handler, re-checks the OCI runtime's features at task create (`failed to validate OCI runtime features`), idmaps mounts and, with overlayfs, image layers (remap-ids) or refuses without slow_chown",
		"containerd internal/cri/server/service.go introspectRuntimeHandler; core/runtime/v2/task_manager.go validateRuntimeFeatures; client/snapshotter_opts_unix.go resolveSnapshotOptions (v2.0.14–v2.2.10)")
	ContainerdConfigV3 = def("containerd.config_v3", "2.0",
		"reads config version 3 and merges imported plugin tables key by key; 2.0–2.2 read a file without `version` as version 1 only to rename its plugins, so its CRI settings are ignored",
		"containerd cmd/containerd/server/config/config.go LoadConfig, mergeConfig, MigrateConfigTo (v2.0.14–v2.2.10)")
	ContainerdConfigV4 = def("containerd.config_v4", "2.3",
		"reads config version 4 and migrates each file on its own before the merge (a version 2 file beside a version 3 file keeps its CRI settings; a file without `version` is migrated)",
		"containerd cmd/containerd/server/config/config.go LoadConfigWithPlugins (v2.3.7)")
	ContainerdShimInfoAnyType = def("containerd.shim_info_any_type", "2.4.0",
		"the CRI asks every handler's shim for its features (`-info`), not only io.containerd.runc.v2 ones; before, other runtime types report no user namespace support",
		"containerd internal/cri/server/service.go introspectRuntimeFeatures (fd7819bcb, v2.4.0-beta.0)")
	ContainerdShimInfoAnyType22 = def("containerd.shim_info_any_type_2_2", "2.2.7",
		"the 2.2 backport of containerd.shim_info_any_type", "containerd 6a3d14e8a (v2.2.7)")
	ContainerdShimInfoAnyType23 = def("containerd.shim_info_any_type_2_3", "2.3.4",
		"the 2.3 backport of containerd.shim_info_any_type", "containerd 61a8f6f45 (v2.3.4)")
	ContainerdGlobImports16 = def("containerd.glob_imports_1_6", "1.6.29",
		"a relative glob import is expanded against the importing file's directory, not the working directory (/ under systemd)",
		"containerd services/server/config/config.go resolveImports (tags checked)")
	ContainerdGlobImports17 = def("containerd.glob_imports_1_7", "1.7.16",
		"the 1.7 release of containerd.glob_imports_1_6", "containerd services/server/config/config.go resolveImports (tags checked)")

	RuncFeatures = def("runc.features", "1.1.0",
		"`runc features` exists (absent in 1.0.x: containerd then sees no features document)", "runc features.go (v1.1.0; absent in v1.0.2)")
	RuncIdmap = def("runc.idmap", "1.2.0",
		"`runc features` declares linux.mountExtensions.idmap.enabled: idmapped mounts, which containerd ≥2.0 requires for user-namespaced pods", "runc features.go, libcontainer/mount_linux.go (v1.2.6)")
	RuncUsernsFixed = def("runc.userns_fixed", "1.2.1",
		"1.2.0 has user-namespace regressions fixed in 1.2.1", "runc CHANGELOG.md 1.2.1")
	CrunFeatures = def("crun.features", "1.8.6",
		"`crun features` exists", "crun 366af732 (1.8.6)")
	CrunIdmap = def("crun.idmap", "1.9",
		"`crun features` declares linux.mountExtensions.idmap.enabled", "crun 668f5d53 (1.9)")

	// The kubelet's side of the CRI contract, as containerd's rules need it.
	KubeletHandlerUserns = def("kubelet.handler_userns", "1.30",
		"the kubelet refuses a hostUsers: false pod whose runtime handler does not report user namespace support (`can't set `spec.hostUsers: false`, runtime does not support user namespaces`)",
		"k8s.io/kubernetes pkg/kubelet/userns/userns_manager.go GetOrCreateUserNamespaceMappings, pkg/kubelet/kubelet_getters.go HandlerSupportsUserNamespaces (v1.30.14, v1.34.4; absent in v1.29.6)")
)

// CRI-O, judged by version only (usernsctl reads no CRI-O config).
var (
	CrioUserns = def("crio.userns", "1.25",
		"CRI-O gives a pod the user namespace the kubelet asks for in the CRI's NamespaceOptions.UsernsOptions (hostUsers: false)",
		"cri-o server/sandbox_run_linux.go configureSandboxIDMappings (reads UsernsOptions from v1.25.0; absent in v1.24.0)")
	CrioRuntimeHandlers = def("crio.runtime_handlers", "1.30",
		"CRI-O reports its runtime handlers in the CRI status, each with UserNamespaces set when its OCI runtime's `features` advertises idmapped mounts (runc 1.2, crun 1.9); before, it reports none, which a kubelet from 1.30 takes as no user namespace support",
		"cri-o server/runtime_status.go Status, pkg/config/config.go RuntimeSupportsIDMap, v1.30.0 (absent in v1.29.13)")
)
