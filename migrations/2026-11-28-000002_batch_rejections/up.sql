-- Why rows of a committed batch were rejected, for the uploader's rejection report. Reasons
-- never repeat a value from the file, so this table holds no case data.
CREATE TABLE batch_rejections (
    batch_id  UUID NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
    row_number BIGINT NOT NULL CHECK (row_number >= 1),
    field     TEXT NOT NULL,
    reason    TEXT NOT NULL,
    ordinal   INTEGER NOT NULL CHECK (ordinal >= 0),
    PRIMARY KEY (batch_id, ordinal)
);
