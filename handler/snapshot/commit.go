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
