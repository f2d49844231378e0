package rules

// Kubernetes versions at which the kubelet's user-namespace behaviour
// changes (pkg/kubelet, pkg/features, k8s.io/kubelet config types), read
// from the source of v1.30.4–v1.36.3.
var (
	KubeletUserNSMin = def("kubelet.userns_min", "1.25",
		"pods can ask for a user namespace (`hostUsers: false`, gate UserNamespacesStatelessPodsSupport)", "pkg/features kube_features.go, v1.25")
	KubeletUserNSStateful = def("kubelet.userns_stateful", "1.27",
		"pods with hostUsers: false may mount volumes (the kubelet asks the runtime for idmapped mounts); before, only stateless pods", "pkg/kubelet/kuberuntime, KEP-127, v1.27")
	KubeletGateRenamed = def("kubelet.userns_gate_renamed", "1.28",
		"the gate is UserNamespacesSupport; UserNamespacesStatelessPodsSupport is unknown and the kubelet refuses to start with it (`unrecognized feature gate`)", "component-base featuregate SetFromMap; pkg/features, v1.28")
	KubeletUserNSBeta = def("kubelet.userns_beta", "1.30",
		"UserNamespacesSupport is beta (still off by default)", "pkg/features versioned_kube_features.go, v1.30")
	KubeletUserNSDefaultOn = def("kubelet.userns_default_on", "1.33",
		"UserNamespacesSupport is on by default: the kubelet reads the `kubelet` user's ranges (getsubids) and its pods' records at start; before, with the gate off, it ignores both",
		"pkg/features versioned_kube_features.go; pkg/kubelet/kubelet_pods.go getKubeletMappings, v1.33")
	KubeletUserNSGA = def("kubelet.userns_ga", "1.36",
		"UserNamespacesSupport is GA and locked on: `false` refuses to start (`cannot set feature gate UserNamespacesSupport to false, feature is locked to true`)",
		"pkg/features versioned_kube_features.go; component-base featuregate, v1.36")
	KubeletIDsPerPodValidated = def("kubelet.ids_per_pod_validated", "1.33",
		"`userNamespaces.idsPerPod` exists and is validated (≥65536, a multiple of 65536, ≤4294967295; else `failed to validate kubelet configuration`); before, the field is unknown and the kubelet ignores it (lenient decoding)",
		"pkg/kubelet/apis/config/validation/validation_linux.go validateKubeletOSConfiguration; k8s.io/kubelet config/v1beta1, v1.33")
	KubeletIDsPerPodHonoured = def("kubelet.ids_per_pod_honoured", "1.35",
		"`userNamespaces.idsPerPod` is the block each pod gets, the range's alignment, and the start of the default range (idsPerPod .. 2^32); 1.33–1.34 always use 65536 (NewMainKubelet builds the userns manager before it stores the config)",
		"pkg/kubelet/kubelet.go NewMainKubelet, pkg/kubelet/userns/userns_manager.go MakeUserNsManager, v1.35 (#133373)")
	KubeletPodRecordNamesPod = def("kubelet.pod_record_names_pod", "1.35",
		"a bad pod record stops the kubelet with `record pod mappings for existing pod \"UID\": …` (before: `record pod mappings: …`)",
		"pkg/kubelet/userns/userns_manager.go MakeUserNsManager, v1.35")
	KubeletDropInAPIVersion = def("kubelet.dropin_api_version", "1.32",
		"a --config-dir drop-in needs `apiVersion: kubelet.config.k8s.io/v1beta1` and `kind: KubeletConfiguration` (`failed to load kubelet dropin file, path: …, no apiVersion/kind`); before, it is decoded as unstructured, which needs kind only",
		"cmd/kubelet/app/server.go mergeKubeletConfigurations; pkg/kubelet/kubeletconfig/util/codec DecodeKubeletConfigurationIntoJSON, v1.30.14, v1.32.13")
	KubeletPSSGateRemoved = def("kubelet.pss_gate_removed", "1.35",
		"the alpha gate UserNamespacesPodSecurityStandards is gone: setting it refuses to start (`unrecognized feature gate: UserNamespacesPodSecurityStandards`)",
		"pkg/features, v1.35 (#132157); component-base featuregate SetFromMap")
	KubeletGateDependencies = def("kubelet.gate_dependencies", "1.35",
		"ProcMountType (on by default) and UserNamespacesHostNetworkSupport depend on UserNamespacesSupport: `UserNamespacesSupport: false` refuses to start unless `ProcMountType: false` too (`ProcMountType is enabled, but depends on features that are disabled: [UserNamespacesSupport]`); UserNamespacesHostNetworkSupport is unknown before",
		"pkg/features versioned_kube_features.go (dependencies); component-base featuregate SetFromMap, v1.35")
)
