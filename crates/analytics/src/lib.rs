//! The statistics of Safeguard Atlas: grids, Getis-Ord Gi*, false-discovery control, emerging
//! hotspots, rates and disclosure control, as pure functions over cell counts.
//!
//! It exists now so the workspace has its final shape and dependency direction; the statistics
//! arrive with issues 5 and 6 (see docs/architecture.md).
