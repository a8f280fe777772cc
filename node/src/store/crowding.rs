//! Which stored report a full store gives up: the in-memory index of how
//! crowded each area and each cell of the store is, and the choice of the
//! victim ([`Crowding::victim`]).
//!
//! # The rule (issue 14: floods of valid reports)
//!
//! When the store is full, the report given up comes from the **most
//! crowded area**, and within it from the **most crowded cell**, counting
//! the incoming report as if it were already stored. Within that cell the
//! report **observed earliest** goes (then the smallest id); if that is the
//! incoming report itself, it is refused instead.
//!
//! Ties between areas (and between cells) are settled against the incoming
//! report's own area (cell): a report never displaces one from a place
//! that is only as crowded as its own would become.
//!
//! What this guarantees: a flood into a few cells only ever evicts reports
//! of the flooded cells, as long as they hold more reports than any other
//! cell of the flooded area and that area more than any other; a report in
//! a quiet place is never given up for one in a crowded place; and a longer
//! TTL buys nothing (the order within a cell is the observation time, not
//! the expiry). This is a max-min fair share of the store between areas,
//! then between the cells of an area.
//!
//! The index is rebuilt from the `reports` tree when the store opens (it is
//! not on disk: nothing to migrate, nothing to corrupt). It is also the
//! store's index by area and cell ([`Crowding::ids_with_prefix`]) and by id
//! ([`Crowding::contains`]).

use std::collections::{BTreeSet, HashMap};

use ronde_protocol::ReportId;

/// Length of an area's prefix of a cell key.
const AREA_KEY_LEN: usize = 5;

/// A cell key: a precision-7 cell, or a shorter one padded with `-`.
pub(crate) type CellKey = [u8; 7];
type AreaKey = [u8; AREA_KEY_LEN];

fn area_of(cell: &CellKey) -> AreaKey {
    let mut a = [0u8; AREA_KEY_LEN];
    a.copy_from_slice(&cell[..AREA_KEY_LEN]);
    a
}

/// What a full store does with an incoming report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Victim {
    /// Give up this stored report.
    Evict(ReportId),
    /// Refuse the incoming report: it would be the one given up.
    Refuse,
}

#[derive(Default)]
struct AreaIdx {
    len: usize,
    /// Each cell's reports, by (observed, id).
    cells: HashMap<CellKey, BTreeSet<(u64, ReportId)>>,
}

/// Reports per area and per cell, and each report's place.
#[derive(Default)]
pub(crate) struct Crowding {
    areas: HashMap<AreaKey, AreaIdx>,
    place: HashMap<ReportId, (CellKey, u64)>,
}

impl Crowding {
    /// Count a stored report.
    pub(crate) fn add(&mut self, id: ReportId, cell: CellKey, observed: u64) {
        if self.place.insert(id, (cell, observed)).is_some() {
            return;
        }
        let area = self.areas.entry(area_of(&cell)).or_default();
        area.len += 1;
        area.cells.entry(cell).or_default().insert((observed, id));
    }

    /// Forget a report (removed, evicted or expired).
    pub(crate) fn remove(&mut self, id: &ReportId) {
        let Some((cell, observed)) = self.place.remove(id) else {
            return;
        };
        let key = area_of(&cell);
        let Some(area) = self.areas.get_mut(&key) else {
            return;
        };
        if let Some(set) = area.cells.get_mut(&cell) {
            set.remove(&(observed, *id));
            if set.is_empty() {
                area.cells.remove(&cell);
            }
        }
        area.len = area.len.saturating_sub(1);
        if area.len == 0 {
            self.areas.remove(&key);
        }
    }

    /// Reports counted.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.place.len()
    }

    /// Whether a report is counted.
    pub(crate) fn contains(&self, id: &ReportId) -> bool {
        self.place.contains_key(id)
    }

    /// The reports whose cell key starts with `prefix` (an area, a whole
    /// cell key), by cell key then id: the order of a prefix scan of a
    /// (cell ‖ id) index.
    pub(crate) fn ids_with_prefix(&self, prefix: &[u8]) -> Vec<ReportId> {
        let mut found: Vec<(CellKey, ReportId)> = Vec::new();
        let mut take = |area: &AreaIdx| {
            if let Ok(cell) = CellKey::try_from(prefix) {
                if let Some(set) = area.cells.get(&cell) {
                    found.extend(set.iter().map(|&(_, id)| (cell, id)));
                }
                return;
            }
            for (cell, set) in &area.cells {
                if cell.starts_with(prefix) {
                    found.extend(set.iter().map(|&(_, id)| (*cell, id)));
                }
            }
        };
        match prefix.get(..AREA_KEY_LEN).map(AreaKey::try_from) {
            Some(Ok(area)) => {
                if let Some(a) = self.areas.get(&area) {
                    take(a);
                }
            }
            _ => {
                for (_, a) in self.areas.iter().filter(|(k, _)| k.starts_with(prefix)) {
                    take(a);
                }
            }
        }
        found.sort_unstable();
        found.into_iter().map(|(_, id)| id).collect()
    }

    /// Which report a full store gives up for one observed at `observed`
    /// in `cell` (see the module doc). `None` if the index is empty.
    pub(crate) fn victim(&self, cell: &CellKey, observed: u64, id: &ReportId) -> Option<Victim> {
        if self.place.is_empty() {
            return None;
        }
        let new_area = area_of(cell);
        // The most crowded area, the incoming report counted; ties go to
        // the incoming report's own area.
        let own_area = self.areas.get(&new_area).map_or(0, |a| a.len) + 1;
        let (area_key, _) = self
            .areas
            .iter()
            .filter(|(k, _)| **k != new_area)
            .map(|(k, a)| (*k, a.len))
            .fold((new_area, own_area), |best, cand| {
                if cand.1 > best.1 {
                    cand
                } else {
                    best
                }
            });
        let area = self.areas.get(&area_key)?;
        let own_cell = if area_key == new_area {
            area.cells.get(cell).map_or(0, |s| s.len()) + 1
        } else {
            0
        };
        let mut best: (Option<&CellKey>, usize) = (None, own_cell);
        for (k, set) in &area.cells {
            if area_key == new_area && k == cell {
                continue;
            }
            if set.len() > best.1 {
                best = (Some(k), set.len());
            }
        }
        match best.0 {
            Some(k) => area
                .cells
                .get(k)
                .and_then(|s| s.first())
                .map(|(_, old)| Victim::Evict(*old)),
            // The incoming report's own cell is the most crowded.
            None => match area.cells.get(cell).and_then(|s| s.first()) {
                Some(&(t, old)) if (t, old) < (observed, *id) => Some(Victim::Evict(old)),
                // Older than everything in its cell, or alone in a cell as
                // crowded as the others: it would be the one given up.
                _ => Some(Victim::Refuse),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> ReportId {
        ReportId([n; 32])
    }

    fn cell(s: &str) -> CellKey {
        let mut k = [b'-'; 7];
        k.copy_from_slice(s.as_bytes());
        k
    }

    #[test]
    fn the_most_crowded_cell_of_the_most_crowded_area_gives_up_its_oldest() {
        let mut c = Crowding::default();
        // Area u09tv: one honest report; area u09tu: three in one cell,
        // one in another.
        c.add(id(1), cell("u09tvaa"), 100);
        c.add(id(2), cell("u09tuaa"), 50);
        c.add(id(3), cell("u09tuaa"), 40);
        c.add(id(4), cell("u09tuaa"), 60);
        c.add(id(5), cell("u09tubb"), 10);
        assert_eq!(c.len(), 5);
        // A new report anywhere quieter evicts the oldest of the crowded
        // cell, not the older report of a quieter cell.
        assert_eq!(
            c.victim(&cell("u09tvbb"), 200, &id(9)),
            Some(Victim::Evict(id(3)))
        );
        // A new report in the crowded cell itself: the oldest there goes,
        // unless the new one is older still.
        assert_eq!(
            c.victim(&cell("u09tuaa"), 200, &id(9)),
            Some(Victim::Evict(id(3)))
        );
        assert_eq!(c.victim(&cell("u09tuaa"), 1, &id(9)), Some(Victim::Refuse));
        c.remove(&id(3));
        c.remove(&id(3));
        assert_eq!(c.len(), 4);
        assert_eq!(
            c.victim(&cell("u09tvbb"), 200, &id(9)),
            Some(Victim::Evict(id(2)))
        );
    }

    #[test]
    fn ties_never_displace_a_report_from_an_equally_crowded_place() {
        let mut c = Crowding::default();
        c.add(id(1), cell("u09tvaa"), 100);
        c.add(id(2), cell("u09tuaa"), 50);
        // Its own area then holds 2 against 1: the oldest of its own cell
        // goes, never the report of the other area.
        assert_eq!(
            c.victim(&cell("u09tvaa"), 200, &id(9)),
            Some(Victim::Evict(id(1)))
        );
        // Alone in a new cell of its area, as crowded as the other cell:
        // it is refused rather than displacing an equal.
        assert_eq!(
            c.victim(&cell("u09tvbb"), 200, &id(9)),
            Some(Victim::Refuse)
        );
        // An empty index has no opinion.
        assert_eq!(
            Crowding::default().victim(&cell("u09tvbb"), 200, &id(9)),
            None
        );
    }
}
