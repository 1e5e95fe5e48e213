-- Comparator groups: the partnerships each partnership compares itself with when not its
-- geographic neighbours (its statistical neighbours, say), imported as a list.
CREATE TABLE partnership_comparators (
    partnership_code  TEXT NOT NULL REFERENCES partnerships (code) ON DELETE CASCADE,
    comparator_code   TEXT NOT NULL REFERENCES partnerships (code) ON DELETE CASCADE,
    PRIMARY KEY (partnership_code, comparator_code),
    CHECK (partnership_code <> comparator_code)
);
