package snapshot

import "time"

// Commit is one entry of SR Linux's "system configuration commit" state list.
type Commit struct {
	ID       int64     `json:"id"`
	Type     string    `json:"type,omitempty"`   // shared or private
	Name     string    `json:"name,omitempty"`   // the candidate's name
	Status   string    `json:"status,omitempty"` // complete, failed, validating, ...
	Comment  string    `json:"comment,omitempty"`
	Username string    `json:"username,omitempty"`
	Started  time.Time `json:"started,omitzero"`
	Ended    time.Time `json:"ended,omitzero"`
}

// A Mark is where a switch's captured history stands: the newest commit a
// snapshot holds, and the last-change it was named for. The next snapshot holds
// the complete commits after Commit.
type Mark struct {
	Commit int64 `json:"commit,omitempty"` // 0: no commit known
	// Started tells Commit from the commit of the same id after a reboot:
	// SR Linux numbers commits from 1 again at boot.
	Started    time.Time `json:"started,omitzero"`
	LastChange time.Time `json:"last_change,omitzero"`
}
