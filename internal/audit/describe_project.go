package audit

import "fmt"

// describeProject says what a project event means in plain words, for the
// project's history page; ok is false for a tag that is not a project's.
func describeProject(e Stored) (string, bool) {
	str := func(k string) string {
		if v, ok := e.Additional[k]; ok && v != nil {
			return fmt.Sprint(v)
		}
		return ""
	}
	by := e.Actor
	if by == "" {
		by = "an administrator"
	}
	switch e.Tag {
	case ProjectCreate:
		return "Project created by " + by, true
	case ProjectReleaseAdd:
		return "Release " + str("version") + " created by " + by, true
	case FileAdd:
		return "File " + str("filename") + " uploaded by " + by, true
	case ProjectReleaseYank:
		reason := str("yanked_reason")
		if reason == "" {
			return "Release " + str("version") + " yanked by " + by + " (no reason given)", true
		}
		return "Release " + str("version") + " yanked by " + by + ": " + reason, true
	case ProjectReleaseUnyank:
		return "Release " + str("version") + " un-yanked by " + by, true
	case ProjectReleaseRemove:
		return "Release " + str("version") + " deleted by " + by + ", with its files", true
	case FileRemove:
		return "File " + str("filename") + " deleted by " + by, true
	case ProjectRemove:
		return "Project deleted by " + by, true
	case ProjectArchiveEnter:
		return "Project archived by " + by, true
	case ProjectArchiveExit:
		return "Project unarchived by " + by, true
	case ProjectQuarantineEnter:
		return "Project quarantined by administrator " + by + ": " + str("reason"), true
	case ProjectQuarantineExit:
		return "Quarantine lifted by administrator " + by, true
	case AdminProjectUploadLimit:
		return limitChange("Largest file", str("limit"), by), true
	case AdminProjectTotalSizeLimit:
		return limitChange("Total size limit", str("limit"), by), true
	case AdminProjectReleaseAge:
		if d := str("days"); d == "1" {
			return "Releases now take new files for 1 day, set by administrator " + by, true
		} else if d != "" {
			return "Releases now take new files for " + d + " days, set by administrator " + by, true
		}
		return "Releases take new files for the site's default number of days again, set by administrator " + by, true
	}
	return "", false
}

func limitChange(what, limit, by string) string {
	if limit == "" {
		return what + " back to the site default, set by administrator " + by
	}
	return what + " set to " + limit + " by administrator " + by
}
