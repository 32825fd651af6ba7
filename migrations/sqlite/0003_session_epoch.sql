-- A member's sessions started before the member's session_epoch was last raised are over: a
-- password change (and a move to a lower role) raises it, ending the member's other sessions.
ALTER TABLE members ADD COLUMN session_epoch INTEGER NOT NULL DEFAULT 0;
