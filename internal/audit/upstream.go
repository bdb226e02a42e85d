package audit

// Tags of the pull-through cache and PEP 708 (docs/upstream.md). All are
// ours: PyPI has no upstream.
const (
	// ProjectOriginChange: where installers find a project's name (the
	// pull-through cache, internal/upstream), changed by an owner or an
	// administrator. Recorded with ProjectID.
	ProjectOriginChange = "project:origin:change"
	// ProjectAlternateLocationsChange: an owner changed the project's PEP
	// 708 alternate locations. Recorded with ProjectID.
	ProjectAlternateLocationsChange = "project:alternate_locations:change"
	// AdminUpstreamEarlyAllow and AdminUpstreamEarlyRemove: an
	// administrator let an upstream version through --upstream-min-age
	// early, or took that back. Recorded with UserID of the administrator,
	// so it is in their account's history.
	AdminUpstreamEarlyAllow  = "admin:upstream:early_version:allowed"
	AdminUpstreamEarlyRemove = "admin:upstream:early_version:removed"
)

// describeUpstream says what a pull-through cache event means.
func describeUpstream(e Stored, str func(string) string) (string, bool) {
	by := " by " + e.Actor
	if str("as") == "administrator" {
		by = " by administrator " + e.Actor
	}
	switch e.Tag {
	case ProjectOriginChange:
		words := map[string]string{"local": "from this index only", "both": "from this index and the upstream index", "upstream": "from the upstream index only"}
		w := words[str("origin")]
		if w == "" {
			w = "elsewhere"
		}
		return "Installers now find the project " + w + by, true
	case ProjectAlternateLocationsChange:
		if alt := str("alternate_locations"); alt != "" {
			return "Alternate locations (PEP 708) set to " + alt + by, true
		}
		return "Alternate locations (PEP 708) removed" + by, true
	case AdminUpstreamEarlyAllow:
		return "Upstream " + str("project") + " " + str("version") + " allowed before its cooldown by administrator " + e.Actor, true
	case AdminUpstreamEarlyRemove:
		return "Upstream " + str("project") + " " + str("version") + " no longer allowed before its cooldown, by administrator " + e.Actor, true
	}
	return "", false
}
