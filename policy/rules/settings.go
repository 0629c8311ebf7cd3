package rules

import "fmt"

// Settings are the pack config the rules read, other than exceptions. The zero value is the
// default: Pod Security restricted at DefaultPodSecurityVersion, images by tag or digest.
type Settings struct {
	PodSecurity PodSecurity
	Images      ImageSettings
}

// ImageSettings tune pod-image-pull-policy.
type ImageSettings struct {
	// RequireDigest makes every image a node pulls (pull policy Always or IfNotPresent) name a
	// digest: a tag can be pushed again, so two nodes could run different code under one tag.
	// Images loaded onto the node (pull policy Never) are exempt.
	RequireDigest bool
}

// Keys of the settings policy's config.
const (
	SettingsPodSecurityKey = "podSecurity"
	SettingsImagesKey      = "images"
)

// ParseSettings reads the settings policy's config:
//
//	{"podSecurity": {"level": "restricted", "version": "v1.35"}, "images": {"requireDigest": true}}
//
// Every key is optional. Problems name the field and the fix; a bad value keeps its default.
func ParseSettings(config map[string]any) (Settings, []string) {
	var s Settings
	var problems []string
	known := map[string]bool{SettingsPodSecurityKey: true, SettingsImagesKey: true}
	for _, k := range sortedKeys(config) {
		if !known[k] {
			problems = append(problems, fmt.Sprintf("settings.%s: unknown setting; use %s or %s", k, SettingsPodSecurityKey, SettingsImagesKey))
		}
	}
	if raw, ok := config[SettingsPodSecurityKey]; ok && raw != nil {
		m, ok := raw.(map[string]any)
		if !ok {
			problems = append(problems, `settings.podSecurity: must be an object such as {"level": "restricted", "version": "v1.35"}`)
		} else {
			level, lok := m["level"].(string)
			version, vok := m["version"].(string)
			switch {
			case m["level"] != nil && !lok:
				problems = append(problems, "settings.podSecurity.level: must be a string: baseline or restricted")
			case m["version"] != nil && !vok:
				problems = append(problems, `settings.podSecurity.version: must be a string such as "v1.35" or "latest"`)
			default:
				ps, err := ParsePodSecurity(level, version)
				if err != nil {
					problems = append(problems, "settings.podSecurity: "+err.Error()+"; use level baseline or restricted and version v1.<minor> (the cluster's Kubernetes minor) or latest")
				} else {
					s.PodSecurity = ps
				}
			}
			for _, k := range sortedKeys(m) {
				if k != "level" && k != "version" {
					problems = append(problems, fmt.Sprintf("settings.podSecurity.%s: unknown key; use level and version", k))
				}
			}
		}
	}
	if raw, ok := config[SettingsImagesKey]; ok && raw != nil {
		m, ok := raw.(map[string]any)
		if !ok {
			problems = append(problems, `settings.images: must be an object such as {"requireDigest": true}`)
		} else {
			if v, ok := m["requireDigest"]; ok {
				b, isBool := v.(bool)
				if !isBool {
					problems = append(problems, "settings.images.requireDigest: must be true or false")
				}
				s.Images.RequireDigest = b
			}
			for _, k := range sortedKeys(m) {
				if k != "requireDigest" {
					problems = append(problems, fmt.Sprintf("settings.images.%s: unknown key; use requireDigest", k))
				}
			}
		}
	}
	return s, problems
}
