package rules

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/pod-security-admission/policy"
)

// The Pod Security rules. Whether a pod passes is decided by the upstream checks alone
// (podsecurity.go); each rule then asks the same checks about one container, one volume, one
// sysctl or one annotation at a time to put the finding on the field that causes it, with the
// pack's message and fix. A failure no placement explains is still reported, with the upstream
// reason, so the pack never passes what the API server rejects.

// psaRule is a pack rule backed by upstream Pod Security checks.
type psaRule struct {
	checks []policy.CheckID
	// reads are the fields the checks read, relative to the pod spec ([] for any index;
	// "@annotations" for the pod's annotations): an unknown value among them is listed.
	reads  []string
	locate func(l *psaLocator)
}

// containerReads expands container-relative fields for every container list.
func containerReads(fields ...string) []string {
	var out []string
	for _, l := range containerLists {
		for _, f := range fields {
			out = append(out, l.key+"[]."+f)
		}
	}
	return out
}

func reads(groups ...[]string) []string { return slices.Concat(groups...) }

// psaLocator places the findings of one rule on one pod.
type psaLocator struct {
	f        *finder
	p        pod
	tp       typedPod
	v        *psaVerdict
	cs       []typedContainer
	placed   map[policy.CheckID]bool
	deferred map[policy.CheckID]bool
	version  string
}

func (l *psaLocator) bad(id policy.CheckID, container, field, problem, fix string) {
	l.placed[id] = true
	l.f.bad(container, field, problem, fix)
}

// defer marks a failure of id as reported by another rule (hostPath volumes: pod-host-access).
func (l *psaLocator) deferTo(id policy.CheckID) { l.deferred[id] = true }

// failsAlone reports whether check id fails for container c judged alone in the pod.
func (l *psaLocator) failsAlone(id policy.CheckID, c typedContainer, edits ...func(*corev1.Container)) bool {
	return l.v.failsWith(id, func(_ *metav1.ObjectMeta, spec *corev1.PodSpec) {
		c.ref.only(spec)
		if tc := c.ref.container(spec); tc != nil {
			for _, e := range edits {
				e(tc)
			}
		}
	})
}

// failsPodLevel reports whether check id fails on the pod-level settings alone.
func (l *psaLocator) failsPodLevel(id policy.CheckID, edits ...func(*metav1.ObjectMeta, *corev1.PodSpec)) bool {
	return l.v.failsWith(id, func(meta *metav1.ObjectMeta, spec *corev1.PodSpec) {
		noContainers(meta, spec)
		for _, e := range edits {
			e(meta, spec)
		}
	})
}

func (l *psaLocator) podSC(field string) string { return l.p.spec.path + ".securityContext." + field }

func (c typedContainer) sc(field string) string { return c.path + ".securityContext." + field }

func (c typedContainer) security() *corev1.SecurityContext {
	if c.c.SecurityContext == nil {
		return &corev1.SecurityContext{}
	}
	return c.c.SecurityContext
}

func (l *psaLocator) podSecurity() *corev1.PodSecurityContext {
	if l.tp.spec.SecurityContext == nil {
		return &corev1.PodSecurityContext{}
	}
	return l.tp.spec.SecurityContext
}

// podSecurityRule adapts a psaRule into a ResourceRule check.
func podSecurityRule(name string, rule psaRule) func(Resource, Settings) []Finding {
	return podRuleWith(name, func(f *finder, p pod, s Settings) {
		tp := decodePod(p)
		for _, u := range relevantUnknowns(p, tp.unknowns, rule.reads) {
			f.unknown(p.labelAt(u), u)
		}
		if tp.decodeErr != nil {
			if name == decodeRule {
				f.bad("", tp.decodeField, "the pod spec does not fit the Kubernetes API types ("+tp.decodeErr.Error()+"), so Pod Security cannot be checked",
					"give the field the type the Kubernetes API documents (the API server would reject it too)")
			}
			return
		}
		v := evaluatePodSecurity(s.PodSecurity, tp.meta, tp.spec)
		if !slices.ContainsFunc(rule.checks, v.fails) {
			return
		}
		l := &psaLocator{f: f, p: p, tp: tp, v: v, cs: p.containerRefs(tp),
			placed: map[policy.CheckID]bool{}, deferred: map[policy.CheckID]bool{}, version: s.PodSecurity.String()}
		rule.locate(l)
		for _, id := range rule.checks {
			if res, failed := v.failed[id]; failed && !l.placed[id] && !l.deferred[id] {
				detail := res.ForbiddenReason
				if res.ForbiddenDetail != "" {
					detail += " (" + res.ForbiddenDetail + ")"
				}
				f.bad("", p.spec.path, fmt.Sprintf("Pod Security %s forbids this pod: %s", l.version, detail),
					"change the fields the reason names; https://kubernetes.io/docs/concepts/security/pod-security-standards/ lists what each control allows")
			}
		}
	})
}

// decodeRule reports a pod spec that does not decode, once for all Pod Security rules.
const decodeRule = "pod-security-baseline"

// labelAt names the container a property path is in, if any.
func (p pod) labelAt(path string) string {
	for _, c := range p.containers(func(string) {}) {
		if pathWithin(path, c.path) {
			return c.label
		}
	}
	return ""
}

const (
	idRunAsNonRoot           policy.CheckID = "runAsNonRoot"
	idRunAsUser              policy.CheckID = "runAsUser"
	idAllowPrivEsc           policy.CheckID = "allowPrivilegeEscalation"
	idPrivileged             policy.CheckID = "privileged"
	idCapsBaseline           policy.CheckID = "capabilities_baseline"
	idCapsRestricted         policy.CheckID = "capabilities_restricted"
	idSeccompBaseline        policy.CheckID = "seccompProfile_baseline"
	idSeccompRestricted      policy.CheckID = "seccompProfile_restricted"
	idHostNamespaces         policy.CheckID = "hostNamespaces"
	idHostPathVolumes        policy.CheckID = "hostPathVolumes"
	idRestrictedVolumes      policy.CheckID = "restrictedVolumes"
	idHostPorts              policy.CheckID = "hostPorts"
	idHostProbesAndLifecycle policy.CheckID = "hostProbesAndHostLifecycle"
	idProcMount              policy.CheckID = "procMount"
	idProcMountRestricted    policy.CheckID = "procMount_restricted"
	idSELinux                policy.CheckID = "seLinuxOptions"
	idAppArmor               policy.CheckID = "appArmorProfile"
	idSysctls                policy.CheckID = "sysctls"
	idWindowsHostProcess     policy.CheckID = "windowsHostProcess"
)

var runAsNonRootRule = psaRule{
	checks: []policy.CheckID{idRunAsNonRoot},
	reads:  reads([]string{"securityContext.runAsNonRoot", "hostUsers"}, containerReads("securityContext.runAsNonRoot")),
	locate: func(l *psaLocator) {
		podBad := l.failsPodLevel(idRunAsNonRoot)
		if podBad {
			l.bad(idRunAsNonRoot, "", l.podSC("runAsNonRoot"), "runAsNonRoot is false at pod level",
				"set spec.securityContext.runAsNonRoot: true (or remove it and set it on every container)")
		}
		podTrue := ptrTrue(l.podSecurity().RunAsNonRoot)
		for _, c := range l.cs {
			if !l.failsAlone(idRunAsNonRoot, c) {
				continue
			}
			switch v := c.security().RunAsNonRoot; {
			case v != nil && !*v:
				l.bad(idRunAsNonRoot, c.label, c.sc("runAsNonRoot"), "runAsNonRoot is false, so the container may run as root",
					"set securityContext.runAsNonRoot: true on this container")
			case v == nil && !podTrue:
				l.bad(idRunAsNonRoot, c.label, c.sc("runAsNonRoot"), "runAsNonRoot is not set on the container or the pod, so it may run as root",
					"set securityContext.runAsNonRoot: true on the pod (pod template spec.securityContext) or on this container")
			}
		}
	},
}

var runAsUserRule = psaRule{
	checks: []policy.CheckID{idRunAsUser},
	reads:  reads([]string{"securityContext.runAsUser", "hostUsers"}, containerReads("securityContext.runAsUser")),
	locate: func(l *psaLocator) {
		const fix = "set runAsUser to a non-zero id of 10000 or more, or remove it and let the image's non-root user apply"
		if l.failsPodLevel(idRunAsUser) && ptrIs(l.podSecurity().RunAsUser, 0) {
			l.bad(idRunAsUser, "", l.podSC("runAsUser"), "runAsUser is 0 (root) at pod level", fix)
		}
		for _, c := range l.cs {
			if l.failsAlone(idRunAsUser, c) && ptrIs(c.security().RunAsUser, 0) {
				l.bad(idRunAsUser, c.label, c.sc("runAsUser"), "runAsUser is 0 (root)", fix)
			}
		}
	},
}

var privilegeEscalationRule = psaRule{
	checks: []policy.CheckID{idAllowPrivEsc},
	reads:  reads([]string{"os.name"}, containerReads("securityContext.allowPrivilegeEscalation")),
	locate: func(l *psaLocator) {
		for _, c := range l.cs {
			if !l.failsAlone(idAllowPrivEsc, c) {
				continue
			}
			what := "allowPrivilegeEscalation is not set (it defaults to true)"
			if c.security().AllowPrivilegeEscalation != nil {
				what = "allowPrivilegeEscalation is true"
			}
			l.bad(idAllowPrivEsc, c.label, c.sc("allowPrivilegeEscalation"), what,
				"set securityContext.allowPrivilegeEscalation: false on this container")
		}
	},
}

var privilegedRule = psaRule{
	checks: []policy.CheckID{idPrivileged},
	reads:  containerReads("securityContext.privileged"),
	locate: func(l *psaLocator) {
		for _, c := range l.cs {
			if l.failsAlone(idPrivileged, c) && ptrTrue(c.security().Privileged) {
				l.bad(idPrivileged, c.label, c.sc("privileged"), "privileged is true: the container gets full access to the host",
					"remove securityContext.privileged or set it to false")
			}
		}
	},
}

var capabilitiesRule = psaRule{
	checks: []policy.CheckID{idCapsBaseline, idCapsRestricted},
	reads:  reads([]string{"os.name"}, containerReads("securityContext.capabilities")),
	locate: func(l *psaLocator) {
		for _, c := range l.cs {
			caps := c.security().Capabilities
			if caps == nil {
				caps = &corev1.Capabilities{}
			}
			// With nothing added, a remaining failure is the drop list.
			if l.failsAlone(idCapsRestricted, c, setCaps(caps.Drop, nil)) {
				l.bad(idCapsRestricted, c.label, c.sc("capabilities.drop"), "capabilities.drop does not contain ALL",
					`set securityContext.capabilities.drop: ["ALL"] on this container`)
			}
			for j, add := range caps.Add {
				one := setCaps([]corev1.Capability{"ALL"}, []corev1.Capability{add})
				field := fmt.Sprintf("%s[%d]", c.sc("capabilities.add"), j)
				switch {
				case l.failsAlone(idCapsRestricted, c, one):
					l.bad(idCapsRestricted, c.label, field, fmt.Sprintf("capabilities.add contains %s; only NET_BIND_SERVICE is allowed", add),
						"remove it from securityContext.capabilities.add")
				case l.failsAlone(idCapsBaseline, c, one):
					l.bad(idCapsBaseline, c.label, field, fmt.Sprintf("capabilities.add contains %s, beyond the default set Pod Security baseline allows", add),
						"remove it from securityContext.capabilities.add")
				}
			}
		}
	},
}

func setCaps(drop, add []corev1.Capability) func(*corev1.Container) {
	return func(c *corev1.Container) {
		if c.SecurityContext == nil {
			c.SecurityContext = &corev1.SecurityContext{}
		}
		c.SecurityContext.Capabilities = &corev1.Capabilities{Drop: drop, Add: add}
	}
}

var seccompRule = psaRule{
	checks: []policy.CheckID{idSeccompBaseline, idSeccompRestricted},
	reads: reads([]string{"securityContext.seccompProfile", "os.name", "@annotations"},
		containerReads("securityContext.seccompProfile")),
	locate: func(l *psaLocator) {
		for _, id := range []policy.CheckID{idSeccompRestricted, idSeccompBaseline} {
			podBad := false
			if sp := l.podSecurity().SeccompProfile; sp != nil && l.failsPodLevel(id) {
				podBad = true
				l.bad(id, "", l.podSC("seccompProfile.type"), fmt.Sprintf("seccompProfile.type is %s at pod level", sp.Type),
					"set spec.securityContext.seccompProfile.type: RuntimeDefault (or Localhost with a profile)")
			}
			for _, c := range l.cs {
				switch sp := c.security().SeccompProfile; {
				case sp != nil:
					// Judge the container's own profile, with a valid pod-level one.
					if l.v.failsWith(id, func(_ *metav1.ObjectMeta, s *corev1.PodSpec) {
						c.ref.only(s)
						if s.SecurityContext == nil {
							s.SecurityContext = &corev1.PodSecurityContext{}
						}
						s.SecurityContext.SeccompProfile = &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}
					}) {
						l.bad(id, c.label, c.sc("seccompProfile.type"), fmt.Sprintf("seccompProfile.type is %s", sp.Type),
							"set securityContext.seccompProfile.type: RuntimeDefault (or Localhost) on this container")
					}
				case !podBad && l.failsAlone(id, c): // a bad pod level decides and is reported above
					l.bad(id, c.label, c.sc("seccompProfile.type"), "no seccomp profile is set on the container or the pod",
						"set spec.securityContext.seccompProfile.type: RuntimeDefault on the pod (or on this container)")
				}
			}
		}
	},
}

var hostAccessRule = psaRule{
	checks: []policy.CheckID{idHostNamespaces, idHostPathVolumes, idRestrictedVolumes, idHostPorts, idHostProbesAndLifecycle},
	reads: reads([]string{"hostNetwork", "hostPID", "hostIPC", "volumes[].hostPath"},
		containerReads("ports[].hostPort", "livenessProbe", "readinessProbe", "startupProbe", "lifecycle")),
	locate: func(l *psaLocator) {
		spec := l.tp.spec
		for _, ns := range []struct {
			key string
			on  bool
			set func(*corev1.PodSpec)
		}{
			{"hostNetwork", spec.HostNetwork, func(s *corev1.PodSpec) { s.HostNetwork = true }},
			{"hostPID", spec.HostPID, func(s *corev1.PodSpec) { s.HostPID = true }},
			{"hostIPC", spec.HostIPC, func(s *corev1.PodSpec) { s.HostIPC = true }},
		} {
			if ns.on && l.failsPodLevel(idHostNamespaces, func(_ *metav1.ObjectMeta, s *corev1.PodSpec) {
				s.HostNetwork, s.HostPID, s.HostIPC = false, false, false
				ns.set(s)
			}) {
				l.bad(idHostNamespaces, "", l.p.spec.path+"."+ns.key, ns.key+" is true: the pod shares the host's namespace",
					"remove "+ns.key+" (or set it to false)")
			}
		}
		for i, vol := range spec.Volumes {
			if vol.HostPath == nil {
				continue
			}
			for _, id := range []policy.CheckID{idHostPathVolumes, idRestrictedVolumes} {
				if l.failsPodLevel(id, onlyVolume(i)) {
					l.bad(id, "", fmt.Sprintf("%s.volumes[%d].hostPath", l.p.spec.path, i), fmt.Sprintf("volume %q mounts a hostPath", vol.Name),
						"use an emptyDir, configMap, secret or persistentVolumeClaim volume instead")
					break
				}
			}
		}
		if !l.placed[idRestrictedVolumes] {
			l.deferTo(idRestrictedVolumes) // the other volume types are pod-volume-types'
		}
		for _, c := range l.cs {
			if l.failsAlone(idHostPorts, c) {
				for j, port := range c.c.Ports {
					if port.HostPort != 0 {
						l.bad(idHostPorts, c.label, fmt.Sprintf("%s.ports[%d].hostPort", c.path, j), fmt.Sprintf("hostPort %d binds a port on the node", port.HostPort),
							"remove hostPort and expose the port through a Service")
					}
				}
			}
			if l.failsAlone(idHostProbesAndLifecycle, c) {
				for _, h := range handlerHosts(c.c) {
					l.bad(idHostProbesAndLifecycle, c.label, c.path+"."+h.field, fmt.Sprintf("%s is %q: the kubelet would connect to that host instead of the pod", h.field, h.host),
						"remove host; the kubelet then uses the pod's own IP")
				}
			}
		}
	},
}

func onlyVolume(i int) func(*metav1.ObjectMeta, *corev1.PodSpec) {
	return func(_ *metav1.ObjectMeta, s *corev1.PodSpec) { s.Volumes = s.Volumes[i : i+1] }
}

type handlerHost struct{ field, host string }

// handlerHosts lists the host fields a container's probes and lifecycle hooks set.
func handlerHosts(c *corev1.Container) []handlerHost {
	var out []handlerHost
	add := func(prefix string, http *corev1.HTTPGetAction, tcp *corev1.TCPSocketAction) {
		if http != nil && http.Host != "" {
			out = append(out, handlerHost{prefix + ".httpGet.host", http.Host})
		}
		if tcp != nil && tcp.Host != "" {
			out = append(out, handlerHost{prefix + ".tcpSocket.host", tcp.Host})
		}
	}
	for _, pr := range []struct {
		name string
		p    *corev1.Probe
	}{{"livenessProbe", c.LivenessProbe}, {"readinessProbe", c.ReadinessProbe}, {"startupProbe", c.StartupProbe}} {
		if pr.p != nil {
			add(pr.name, pr.p.HTTPGet, pr.p.TCPSocket)
		}
	}
	if c.Lifecycle != nil {
		for _, h := range []struct {
			name string
			h    *corev1.LifecycleHandler
		}{{"lifecycle.postStart", c.Lifecycle.PostStart}, {"lifecycle.preStop", c.Lifecycle.PreStop}} {
			if h.h != nil {
				add(h.name, h.h.HTTPGet, h.h.TCPSocket)
			}
		}
	}
	return out
}

var volumeTypesRule = psaRule{
	checks: []policy.CheckID{idRestrictedVolumes},
	reads:  []string{"volumes"},
	locate: func(l *psaLocator) {
		vols, _ := l.p.spec.get("volumes").items()
		for i, vol := range l.tp.spec.Volumes {
			if !l.failsPodLevel(idRestrictedVolumes, onlyVolume(i)) {
				continue
			}
			if vol.HostPath != nil {
				l.deferTo(idRestrictedVolumes) // pod-host-access reports it with its own fix
				continue
			}
			typ, path := "no known type", fmt.Sprintf("%s.volumes[%d]", l.p.spec.path, i)
			if i < len(vols) {
				if es, ok := vols[i].entries(); ok {
					for _, e := range es {
						if e.key != "name" {
							typ, path = e.key, e.path
						}
					}
				}
			}
			l.bad(idRestrictedVolumes, "", path, fmt.Sprintf("volume %q has type %s, which Pod Security restricted forbids", vol.Name, typ),
				"use one of "+strings.Join(l.allowedVolumeTypes(), ", ")+" (a PersistentVolumeClaim for network storage)")
		}
	},
}

// allowedVolumeTypes asks the restricted volumes check which volume sources it lets through,
// so the fix never lags the upstream list.
func (l *psaLocator) allowedVolumeTypes() []string {
	var out []string
	t := reflect.TypeOf(corev1.VolumeSource{})
	for i := range t.NumField() {
		fld := t.Field(i)
		name, _, _ := strings.Cut(fld.Tag.Get("json"), ",")
		if fld.Type.Kind() != reflect.Pointer || name == "" {
			continue
		}
		var vs corev1.VolumeSource
		reflect.ValueOf(&vs).Elem().Field(i).Set(reflect.New(fld.Type.Elem()))
		spec := corev1.PodSpec{Volumes: []corev1.Volume{{Name: "v", VolumeSource: vs}}}
		if run := l.v.checks[idRestrictedVolumes]; run != nil && run(&metav1.ObjectMeta{}, &spec).Allowed {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

var baselineRule = psaRule{
	checks: []policy.CheckID{idProcMount, idProcMountRestricted, idSELinux, idAppArmor, idSysctls, idWindowsHostProcess},
	reads: reads([]string{"securityContext.seLinuxOptions", "securityContext.appArmorProfile", "securityContext.sysctls",
		"securityContext.windowsOptions", "hostUsers", "@annotations"},
		containerReads("securityContext.procMount", "securityContext.seLinuxOptions", "securityContext.appArmorProfile",
			"securityContext.windowsOptions")),
	locate: func(l *psaLocator) {
		locateProcMount(l)
		locateSELinux(l)
		locateAppArmor(l)
		locateSysctls(l)
		locateHostProcess(l)
	},
}

func locateProcMount(l *psaLocator) {
	for _, c := range l.cs {
		pm := c.security().ProcMount
		if pm == nil {
			continue
		}
		for _, id := range []policy.CheckID{idProcMountRestricted, idProcMount} {
			if l.failsAlone(id, c) {
				l.bad(id, c.label, c.sc("procMount"), fmt.Sprintf("procMount is %s", *pm), "remove procMount or set it to Default")
				break
			}
		}
	}
}

func locateSELinux(l *psaLocator) {
	report := func(label, path string, opts *corev1.SELinuxOptions, fails func(corev1.SELinuxOptions) bool) {
		if opts == nil {
			return
		}
		if opts.Type != "" && fails(corev1.SELinuxOptions{Type: opts.Type}) {
			l.bad(idSELinux, label, path+".type", fmt.Sprintf("seLinuxOptions.type %s is not allowed", opts.Type),
				"remove it, or use container_t (the runtime's default type)")
		}
		if opts.User != "" && fails(corev1.SELinuxOptions{User: opts.User}) {
			l.bad(idSELinux, label, path+".user", "seLinuxOptions.user is set", "remove seLinuxOptions.user")
		}
		if opts.Role != "" && fails(corev1.SELinuxOptions{Role: opts.Role}) {
			l.bad(idSELinux, label, path+".role", "seLinuxOptions.role is set", "remove seLinuxOptions.role")
		}
	}
	report("", l.podSC("seLinuxOptions"), l.podSecurity().SELinuxOptions, func(o corev1.SELinuxOptions) bool {
		return l.failsPodLevel(idSELinux, func(_ *metav1.ObjectMeta, s *corev1.PodSpec) { s.SecurityContext.SELinuxOptions = &o })
	})
	for _, c := range l.cs {
		report(c.label, c.sc("seLinuxOptions"), c.security().SELinuxOptions, func(o corev1.SELinuxOptions) bool {
			return l.v.failsWith(idSELinux, func(_ *metav1.ObjectMeta, s *corev1.PodSpec) {
				c.ref.only(s)
				if s.SecurityContext != nil {
					s.SecurityContext.SELinuxOptions = nil
				}
				c.ref.container(s).SecurityContext.SELinuxOptions = &o
			})
		})
	}
}

func clearAppArmor(meta *metav1.ObjectMeta, s *corev1.PodSpec) {
	meta.Annotations = nil
	if s.SecurityContext != nil {
		s.SecurityContext.AppArmorProfile = nil
	}
}

func locateAppArmor(l *psaLocator) {
	const fix = "set appArmorProfile.type: RuntimeDefault (or Localhost with a profile) or remove it"
	if ap := l.podSecurity().AppArmorProfile; ap != nil && l.failsPodLevel(idAppArmor, func(m *metav1.ObjectMeta, _ *corev1.PodSpec) { m.Annotations = nil }) {
		l.bad(idAppArmor, "", l.podSC("appArmorProfile.type"), fmt.Sprintf("appArmorProfile.type is %s at pod level", ap.Type), fix)
	}
	for _, c := range l.cs {
		ap := c.security().AppArmorProfile
		if ap != nil && l.v.failsWith(idAppArmor, func(m *metav1.ObjectMeta, s *corev1.PodSpec) { clearAppArmor(m, s); c.ref.only(s) }) {
			l.bad(idAppArmor, c.label, c.sc("appArmorProfile.type"), fmt.Sprintf("appArmorProfile.type is %s", ap.Type), fix)
		}
	}
	for _, k := range sortedKeys(l.tp.meta.Annotations) {
		val := l.tp.meta.Annotations[k]
		if l.failsPodLevel(idAppArmor, func(m *metav1.ObjectMeta, s *corev1.PodSpec) {
			clearAppArmor(m, s)
			m.Annotations = map[string]string{k: val}
		}) {
			l.bad(idAppArmor, "", l.p.meta.path+".annotations."+k, fmt.Sprintf("AppArmor annotation %s is %q", k, val),
				"use runtime/default or localhost/<profile>, or better the appArmorProfile field")
		}
	}
}

func locateSysctls(l *psaLocator) {
	for j, sc := range l.podSecurity().Sysctls {
		if l.failsPodLevel(idSysctls, func(_ *metav1.ObjectMeta, s *corev1.PodSpec) {
			s.SecurityContext.Sysctls = []corev1.Sysctl{sc}
		}) {
			l.bad(idSysctls, "", fmt.Sprintf("%s[%d]", l.podSC("sysctls"), j), fmt.Sprintf("sysctl %s is not in the Pod Security %s safe set", sc.Name, l.version),
				"remove it; Pod Security allows only namespaced sysctls that cannot affect other pods on the node")
		}
	}
}

func locateHostProcess(l *psaLocator) {
	const fix = "remove windowsOptions.hostProcess"
	if wo := l.podSecurity().WindowsOptions; wo != nil && ptrTrue(wo.HostProcess) && l.failsPodLevel(idWindowsHostProcess) {
		l.bad(idWindowsHostProcess, "", l.podSC("windowsOptions.hostProcess"), "windowsOptions.hostProcess is true at pod level", fix)
	}
	for _, c := range l.cs {
		if wo := c.security().WindowsOptions; wo != nil && ptrTrue(wo.HostProcess) && l.v.failsWith(idWindowsHostProcess,
			func(_ *metav1.ObjectMeta, s *corev1.PodSpec) {
				c.ref.only(s)
				if s.SecurityContext != nil {
					s.SecurityContext.WindowsOptions = nil
				}
			}) {
			l.bad(idWindowsHostProcess, c.label, c.sc("windowsOptions.hostProcess"), "windowsOptions.hostProcess is true", fix)
		}
	}
}

func ptrTrue(b *bool) bool { return b != nil && *b }

func ptrIs(p *int64, v int64) bool { return p != nil && *p == v }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
