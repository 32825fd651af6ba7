-- Why a version was written when it was not typed by hand ("rolled back to version 3", "copied
-- from Staging", "the Beta stage's default access"), shown in the flag's history. Access versions
-- have carried an empty note since 0001; remote-config versions get one too.
ALTER TABLE flag_config_versions ADD COLUMN note TEXT NOT NULL DEFAULT '';
