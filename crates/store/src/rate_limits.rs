//! The request rate limit shared by every server process: a GCRA (generic cell rate
//! algorithm) whose state, one timestamp per caller, lives in PostgreSQL, so that a caller's
//! requests count the same whichever process answers them.

use diesel::sql_types::{Double, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::StoreError;

/// What the limit said.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Admission {
    /// The request may go on.
    Admitted,
    /// Over the limit: try again after this many seconds.
    Refused {
        /// Seconds until a request would be admitted.
        retry_after_secs: f64,
    },
}

#[derive(diesel::QueryableByName)]
struct Wait {
    #[diesel(sql_type = Double)]
    seconds: f64,
}

/// Admits one request of `subject` at `per_second` sustained with bursts of `burst`, or says
/// how long to wait. The caller's row is updated in one statement, so processes racing for the
/// same caller each see the other's requests.
///
/// # Errors
/// [`StoreError::Query`].
pub async fn admit(
    conn: &mut AsyncPgConnection,
    subject: &str,
    per_second: u32,
    burst: u32,
) -> Result<Admission, StoreError> {
    let interval = 1.0 / f64::from(per_second.max(1));
    let tolerance = interval * f64::from(burst.max(1));
    // Admitted: the new arrival time, one interval later than the old (or than now, when the
    // caller has been quiet), is within the tolerance of now. Refused: nothing is written, and
    // the wait is how far the arrival time runs past the tolerance.
    let admitted = diesel::sql_query(
        "INSERT INTO rate_limits AS r (subject, theoretical_arrival)
         VALUES ($1, clock_timestamp() + make_interval(secs => $2))
         ON CONFLICT (subject) DO UPDATE
           SET theoretical_arrival = GREATEST(r.theoretical_arrival, clock_timestamp())
                                     + make_interval(secs => $2)
           WHERE GREATEST(r.theoretical_arrival, clock_timestamp()) + make_interval(secs => $2)
                 <= clock_timestamp() + make_interval(secs => $3)
         RETURNING 0::float8 AS seconds",
    )
    .bind::<Text, _>(subject)
    .bind::<Double, _>(interval)
    .bind::<Double, _>(tolerance)
    .get_results::<Wait>(conn)
    .await?;
    if !admitted.is_empty() {
        return Ok(Admission::Admitted);
    }
    let wait = diesel::sql_query(
        "SELECT GREATEST(EXTRACT(EPOCH FROM theoretical_arrival + make_interval(secs => $2)
                 - make_interval(secs => $3) - clock_timestamp())::float8, 0) AS seconds
         FROM rate_limits WHERE subject = $1",
    )
    .bind::<Text, _>(subject)
    .bind::<Double, _>(interval)
    .bind::<Double, _>(tolerance)
    .get_results::<Wait>(conn)
    .await?;
    Ok(Admission::Refused {
        retry_after_secs: wait.into_iter().next().map_or(1.0, |wait| wait.seconds),
    })
}

/// Deletes the rows of callers whose limit has long recovered (their arrival time more than an
/// hour past); returns how many.
///
/// # Errors
/// [`StoreError::Query`].
pub async fn forget_quiet(conn: &mut AsyncPgConnection) -> Result<usize, StoreError> {
    Ok(diesel::sql_query(
        "DELETE FROM rate_limits WHERE theoretical_arrival < clock_timestamp() - interval '1 hour'",
    )
    .execute(conn)
    .await?)
}
