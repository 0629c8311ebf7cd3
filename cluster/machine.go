package cluster

// failCgroupV1 is the kubelet's failCgroupV1: unset (the kubelet refuses cgroup v1) unless the
// nodes are allowed to run on it.
func (c clusterConfig) failCgroupV1() *bool {
	if !c.AllowCgroupV1 {
		return nil
	}
	f := false
	return &f
}
