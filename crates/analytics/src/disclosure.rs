//! Disclosure control for every table that leaves a partnership (docs/privacy.md).
//!
//! - **Primary suppression**: a count from 1 to the threshold (5 by default, as in the
//!   Department for Education's children-in-need statistics; 7 where a health partner requires
//!   it) is published as `c`; a true zero is published as 0.
//! - **Secondary suppression**: a table is published with its row, column and grand totals.
//!   Each row (with its total) and each column (with its total) is a linear equation, so a
//!   suppressed value could be worked out from the others. Further entries, the smallest
//!   non-zero ones first, are suppressed until no suppressed value is determined by the
//!   published ones: every line holds no suppressed entry or at least two, and no suppressed
//!   entry is a "bridge" whose value the equations fix (checked by linear algebra).
//! - **Rounding**: published totals are rounded to the nearest multiple of the rounding base
//!   (5 or 10; halves up), and a total that would round to a value from 1 to the threshold is
//!   suppressed instead; rates are not shown where their numerator is suppressed (the
//!   caller's rule).
//!
//! The result never holds a value from 1 to the threshold, and every suppressed value keeps at
//! least two possible values given everything published (property-tested).

use std::fmt;

/// The disclosure-control policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Counts from 1 to this are suppressed (5 by default; 7 for some health data).
    pub threshold: u32,
    /// Published totals are rounded to the nearest multiple of this (5 or 10; 1 for none).
    pub rounding: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            threshold: 5,
            rounding: 5,
        }
    }
}

/// A published value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    /// The value as published (exact for cells, rounded for totals).
    Value(u32),
    /// Suppressed: shown as `c`.
    Suppressed,
}

impl fmt::Display for Published {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Value(value) => write!(f, "{value}"),
            Self::Suppressed => f.pad("c"),
        }
    }
}

/// Why an entry was suppressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Published as it is.
    None,
    /// A count from 1 to the threshold.
    Primary,
    /// Suppressed so that another suppressed value cannot be worked out.
    Secondary,
}

/// A table of counts ready to publish: its cells and totals, each published or suppressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtectedTable {
    /// Published cells, row by row.
    pub cells: Vec<Vec<Published>>,
    /// Published row totals.
    pub row_totals: Vec<Published>,
    /// Published column totals.
    pub column_totals: Vec<Published>,
    /// The published grand total.
    pub grand_total: Published,
    /// Why each entry of the extended table (cells, then each row's total in the last column,
    /// then the column totals and the grand total in the last row) was suppressed.
    pub reasons: Vec<Vec<Reason>>,
}

impl ProtectedTable {
    /// How many entries (cells and totals) were suppressed for each reason: (primary,
    /// secondary).
    #[must_use]
    pub fn suppressed(&self) -> (usize, usize) {
        let all = self.reasons.iter().flatten();
        let primary = all
            .clone()
            .filter(|reason| **reason == Reason::Primary)
            .count();
        let secondary = all.filter(|reason| **reason == Reason::Secondary).count();
        (primary, secondary)
    }
}

/// Protects a table of counts (`cells[row][column]`, every row the same length) under
/// `policy`. A table without rows or columns is returned empty.
#[must_use]
pub fn protect(cells: &[Vec<u32>], policy: Policy) -> ProtectedTable {
    let rows = cells.len();
    let columns = cells.first().map_or(0, Vec::len);
    // The extended table: cells, each row's total in column `columns`, the column totals and
    // the grand total in row `rows`.
    let mut values = vec![vec![0_u64; columns + 1]; rows + 1];
    for (r, row) in cells.iter().enumerate() {
        for (c, value) in row.iter().enumerate().take(columns) {
            let value = u64::from(*value);
            values[r][c] = value;
            values[r][columns] += value;
            values[rows][c] += value;
            values[rows][columns] += value;
        }
    }
    let threshold = u64::from(policy.threshold);
    let base = u64::from(policy.rounding.max(1));
    let rounded = |value: u64| (value + base / 2) / base * base;
    // A total is suppressed too when its rounded value would fall from 1 to the threshold.
    let mut reasons: Vec<Vec<Reason>> = values
        .iter()
        .enumerate()
        .map(|(r, row)| {
            row.iter()
                .enumerate()
                .map(|(c, value)| {
                    let total = r == rows || c == columns;
                    let small = (1..=threshold).contains(value)
                        || (total && (1..=threshold).contains(&rounded(*value)));
                    if small { Reason::Primary } else { Reason::None }
                })
                .collect()
        })
        .collect();
    secondary_suppression(&values, &mut reasons);
    let round = |value: u64| -> u32 { u32::try_from(rounded(value)).unwrap_or(u32::MAX) };
    let publish = |r: usize, c: usize, total: bool| -> Published {
        if reasons[r][c] == Reason::None {
            let value = values[r][c];
            Published::Value(if total {
                round(value)
            } else {
                u32::try_from(value).unwrap_or(u32::MAX)
            })
        } else {
            Published::Suppressed
        }
    };
    ProtectedTable {
        cells: (0..rows)
            .map(|r| (0..columns).map(|c| publish(r, c, false)).collect())
            .collect(),
        row_totals: (0..rows).map(|r| publish(r, columns, true)).collect(),
        column_totals: (0..columns).map(|c| publish(rows, c, true)).collect(),
        grand_total: publish(rows, columns, true),
        reasons,
    }
}

/// The entries of each line of the extended table: every row (its cells and its total) and
/// every column (its cells and its total).
fn lines(rows: usize, columns: usize) -> Vec<Vec<(usize, usize)>> {
    let mut lines: Vec<Vec<(usize, usize)>> = (0..=rows)
        .map(|r| (0..=columns).map(|c| (r, c)).collect())
        .collect();
    lines.extend((0..=columns).map(|c| (0..=rows).map(|r| (r, c)).collect()));
    lines
}

/// Suppresses further entries until no suppressed value is determined by the rest.
fn secondary_suppression(values: &[Vec<u64>], reasons: &mut [Vec<Reason>]) {
    let rows = values.len() - 1;
    let columns = values[0].len() - 1;
    let lines = lines(rows, columns);
    let suppressed =
        |reasons: &[Vec<Reason>], (r, c): (usize, usize)| reasons[r][c] != Reason::None;
    // The smallest non-zero published entry among `candidates`.
    let smallest = |reasons: &[Vec<Reason>],
                    candidates: &mut dyn Iterator<Item = (usize, usize)>| {
        candidates
            .filter(|&(r, c)| reasons[r][c] == Reason::None && values[r][c] > 0)
            .min_by_key(|&(r, c)| (values[r][c], r, c))
    };
    loop {
        // 1. A line with exactly one suppressed entry gives it away: suppress a partner.
        let lonely = lines.iter().find(|line| {
            line.iter()
                .filter(|entry| suppressed(reasons, **entry))
                .count()
                == 1
        });
        if let Some(line) = lonely
            && let Some((r, c)) = smallest(reasons, &mut line.iter().copied())
        {
            reasons[r][c] = Reason::Secondary;
            continue;
        }
        // 2. A suppressed entry the equations still fix (a bridge between groups of
        //    suppressed entries): suppress the smallest partner in its row, else its column,
        //    else anywhere.
        let Some((r, c)) = determined_entries(values, reasons).into_iter().next() else {
            return;
        };
        let partner = smallest(reasons, &mut (0..=columns).map(|other| (r, other)))
            .or_else(|| smallest(reasons, &mut (0..=rows).map(|other| (other, c))))
            .or_else(|| {
                smallest(
                    reasons,
                    &mut (0..=rows).flat_map(|row| (0..=columns).map(move |column| (row, column))),
                )
            });
        match partner {
            Some((pr, pc)) => reasons[pr][pc] = Reason::Secondary,
            // Everything non-zero is suppressed: nothing can be determined any more.
            None => return,
        }
    }
}

/// The suppressed entries whose values the published entries determine: those `e` for which
/// the unit vector of `e` lies in the row space of the line equations restricted to the
/// suppressed entries (Gaussian elimination; the equations have 0/±1 coefficients).
#[must_use]
pub fn determined_entries(values: &[Vec<u64>], reasons: &[Vec<Reason>]) -> Vec<(usize, usize)> {
    let rows = values.len() - 1;
    let columns = values[0].len() - 1;
    let unknowns: Vec<(usize, usize)> = (0..=rows)
        .flat_map(|r| (0..=columns).map(move |c| (r, c)))
        .filter(|&(r, c)| reasons[r][c] != Reason::None)
        .collect();
    if unknowns.is_empty() {
        return Vec::new();
    }
    let position = |entry: (usize, usize)| unknowns.iter().position(|known| *known == entry);
    // Each line: the cells sum to the total, i.e. Σ cells − total = 0, over the unknowns.
    let mut equations: Vec<Vec<f64>> = Vec::new();
    for r in 0..=rows {
        let mut equation = vec![0.0; unknowns.len()];
        for c in 0..=columns {
            if let Some(i) = position((r, c)) {
                equation[i] = if c == columns { -1.0 } else { 1.0 };
            }
        }
        equations.push(equation);
    }
    for c in 0..=columns {
        let mut equation = vec![0.0; unknowns.len()];
        for r in 0..=rows {
            if let Some(i) = position((r, c)) {
                equation[i] = if r == rows { -1.0 } else { 1.0 };
            }
        }
        equations.push(equation);
    }
    let rank_of_equations = rank(equations.clone());
    unknowns
        .iter()
        .enumerate()
        .filter(|(i, _)| {
            let mut with_unit = equations.clone();
            let mut unit = vec![0.0; unknowns.len()];
            unit[*i] = 1.0;
            with_unit.push(unit);
            rank(with_unit) == rank_of_equations
        })
        .map(|(_, entry)| *entry)
        .collect()
}

/// The rank of a matrix, by Gaussian elimination with partial pivoting.
fn rank(mut matrix: Vec<Vec<f64>>) -> usize {
    const EPSILON: f64 = 1e-9;
    let columns = matrix.first().map_or(0, Vec::len);
    let mut rank = 0;
    for column in 0..columns {
        let Some(pivot) = (rank..matrix.len())
            .filter(|row| matrix[*row][column].abs() > EPSILON)
            .max_by(|a, b| {
                matrix[*a][column]
                    .abs()
                    .total_cmp(&matrix[*b][column].abs())
            })
        else {
            continue;
        };
        matrix.swap(rank, pivot);
        let pivot_row = matrix[rank].clone();
        for row in matrix.iter_mut().skip(rank + 1) {
            let factor = row[column] / pivot_row[column];
            if factor != 0.0 {
                for (value, pivot_value) in row.iter_mut().zip(&pivot_row) {
                    *value -= factor * pivot_value;
                }
            }
        }
        rank += 1;
    }
    rank
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn small_counts_are_c_zeros_stay_and_a_lonely_suppression_gets_a_partner() {
        let table = protect(&[vec![3, 10, 0], vec![12, 8, 0]], Policy::default());
        assert_eq!(table.cells[0][0], Published::Suppressed, "3 is primary");
        assert_eq!(
            table.cells[0][2],
            Published::Value(0),
            "a true zero is published"
        );
        // Row 0 would give 3 away (total 13): its smallest other non-zero entry goes too, and
        // column 0 (3 + 12 = 15) needs a partner as well.
        let suppressed_in_row_0 = table.cells[0]
            .iter()
            .chain([&table.row_totals[0]])
            .filter(|value| **value == Published::Suppressed)
            .count();
        assert!(suppressed_in_row_0 >= 2);
        assert_eq!(table.suppressed().0, 1);
        assert!(table.suppressed().1 >= 3, "{table:?}");
        assert_eq!(table.grand_total, Published::Value(35), "33 rounded to 5");
    }

    #[test]
    fn a_table_without_small_counts_is_published_whole() {
        let table = protect(
            &[vec![10, 20], vec![30, 0]],
            Policy {
                threshold: 7,
                rounding: 10,
            },
        );
        assert_eq!(table.suppressed(), (0, 0));
        assert_eq!(table.cells[1][1], Published::Value(0));
        assert_eq!(
            table.row_totals,
            [Published::Value(30), Published::Value(30)]
        );
        assert_eq!(table.grand_total, Published::Value(60));
        assert_eq!(Published::Suppressed.to_string(), "c");
    }

    fn extended(cells: &[Vec<u32>]) -> Vec<Vec<u64>> {
        let rows = cells.len();
        let columns = cells[0].len();
        let mut values = vec![vec![0_u64; columns + 1]; rows + 1];
        for (r, row) in cells.iter().enumerate() {
            for (c, value) in row.iter().enumerate() {
                let value = u64::from(*value);
                values[r][c] = value;
                values[r][columns] += value;
                values[rows][c] += value;
                values[rows][columns] += value;
            }
        }
        values
    }

    /// Independently of [`determined_entries`]: the free unknowns of the line equations, by
    /// exact integer (fraction-free) reduction to row echelon form. An unknown that is a pivot
    /// column with no free unknown in its reduced row is fixed; every other one can move.
    fn free_to_move(values: &[Vec<u64>], reasons: &[Vec<Reason>]) -> Vec<bool> {
        let rows = values.len() - 1;
        let columns = values[0].len() - 1;
        let unknowns: Vec<(usize, usize)> = (0..=rows)
            .flat_map(|r| (0..=columns).map(move |c| (r, c)))
            .filter(|&(r, c)| reasons[r][c] != Reason::None)
            .collect();
        let n = unknowns.len();
        let mut matrix: Vec<Vec<i128>> = Vec::new();
        for line in lines(rows, columns) {
            let total = *line.last().unwrap();
            let row: Vec<i128> = unknowns
                .iter()
                .map(|entry| {
                    if !line.contains(entry) {
                        0
                    } else if *entry == total {
                        -1
                    } else {
                        1
                    }
                })
                .collect();
            matrix.push(row);
        }
        // Reduced row echelon form over the rationals, kept in integers.
        let mut pivots = Vec::new();
        let mut rank = 0;
        for column in 0..n {
            let Some(pivot) = (rank..matrix.len()).find(|row| matrix[*row][column] != 0) else {
                continue;
            };
            matrix.swap(rank, pivot);
            for row in 0..matrix.len() {
                if row != rank && matrix[row][column] != 0 {
                    let (a, b) = (matrix[rank][column], matrix[row][column]);
                    let pivot_row = matrix[rank].clone();
                    for (value, pivot_value) in matrix[row].iter_mut().zip(&pivot_row) {
                        *value = *value * a - pivot_value * b;
                    }
                    let divisor = matrix[row].iter().fold(0_i128, |g, v| gcd(g, v.abs()));
                    if divisor > 1 {
                        matrix[row].iter_mut().for_each(|v| *v /= divisor);
                    }
                }
            }
            pivots.push(column);
            rank += 1;
        }
        (0..n)
            .map(|i| match pivots.iter().position(|column| *column == i) {
                None => true,
                Some(row) => (0..n).any(|k| k != i && !pivots.contains(&k) && matrix[row][k] != 0),
            })
            .collect()
    }

    fn gcd(a: i128, b: i128) -> i128 {
        if b == 0 { a } else { gcd(b, a % b) }
    }

    #[test]
    fn the_checks_catch_a_value_left_to_be_worked_out() {
        let values = extended(&[vec![3, 20], vec![30, 40]]);
        let mut only_primary = vec![vec![Reason::None; 3]; 3];
        only_primary[0][0] = Reason::Primary;
        assert_eq!(free_to_move(&values, &only_primary), [false]);
        assert_eq!(determined_entries(&values, &only_primary), [(0, 0)]);
        // Two in a row and two in a column, but a bridge: still determined.
        let mut pair = only_primary.clone();
        pair[0][1] = Reason::Secondary;
        assert!(free_to_move(&values, &pair).iter().any(|free| !free));
        let protected = protect(&[vec![3, 20], vec![30, 40]], Policy::default());
        assert!(determined_entries(&values, &protected.reasons).is_empty());
        assert_eq!(
            protected.suppressed(),
            (1, 3),
            "the 2 × 2 block around the 3"
        );
    }

    fn tables() -> impl Strategy<Value = Vec<Vec<u32>>> {
        (1_usize..6, 1_usize..6).prop_flat_map(|(rows, columns)| {
            prop::collection::vec(
                prop::collection::vec(prop_oneof![Just(0_u32), 1_u32..8, 8_u32..60], columns),
                rows,
            )
        })
    }

    proptest! {
        /// No published value is ever from 1 to the threshold.
        #[test]
        fn nothing_small_is_published(cells in tables(), threshold in 3_u32..8) {
            let table = protect(&cells, Policy { threshold, rounding: 5 });
            let published = table.cells.iter().flatten()
                .chain(&table.row_totals)
                .chain(&table.column_totals)
                .chain([&table.grand_total]);
            for value in published {
                if let Published::Value(value) = value {
                    prop_assert!(*value == 0 || *value > threshold, "{value} published");
                }
            }
        }

        /// Every suppressed entry keeps at least two possible values given everything
        /// published (totals taken as exact, which only helps an attacker): in the exact
        /// row-echelon form of the line equations each suppressed unknown is free or tied to a
        /// free one, so a null-space direction moves it; and no true zero is suppressed, so a
        /// small step along it stays non-negative.
        #[test]
        fn no_suppressed_value_can_be_worked_out(cells in tables(), threshold in 3_u32..8) {
            let table = protect(&cells, Policy { threshold, rounding: 1 });
            let values = extended(&cells);
            prop_assert!(free_to_move(&values, &table.reasons).iter().all(|free| *free));
            prop_assert!(determined_entries(&values, &table.reasons).is_empty());
            for (r, row) in table.reasons.iter().enumerate() {
                for (c, reason) in row.iter().enumerate() {
                    if *reason != Reason::None {
                        prop_assert!(values[r][c] > 0, "a true zero at ({r}, {c}) was suppressed");
                    }
                }
            }
        }
    }
}
