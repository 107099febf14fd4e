//! Record storage: the generator's lazy base records plus a small overlay of patched or
//! touched ones, and ordered views over them for pagination and `updated_since` filtering.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::RwLock;

use serde_json::{Map, Value};

use crate::faults::RecordFaults;
use crate::hash::{hash3, salt, unit};
use crate::model::{Entity, Generator};

/// What changed about a record since generation.
#[derive(Clone, Debug)]
pub(crate) struct Overlay {
    pub(crate) updated_at: i64,
    /// Accumulated shallow patch; `None` for records that were only touched, which keeps them
    /// on the fast serialization path.
    pub(crate) patch: Option<Map<String, Value>>,
}

#[derive(Debug)]
pub(crate) struct Store {
    pub(crate) gen: Generator,
    overlays: [RwLock<BTreeMap<u64, Overlay>>; 4],
    /// Next logical timestamp to hand out; starts past every base timestamp so a modified
    /// record always sorts after all untouched ones in `updated_since` terms.
    clock: AtomicI64,
    touch_calls: AtomicU64,
}

impl Store {
    pub(crate) fn new(gen: Generator) -> Self {
        Store {
            gen,
            overlays: Default::default(),
            clock: AtomicI64::new(Generator::base_updated_at(gen.max_count() + 1)),
            touch_calls: AtomicU64::new(0),
        }
    }

    fn overlay(&self, entity: Entity) -> std::sync::RwLockReadGuard<'_, BTreeMap<u64, Overlay>> {
        // A poisoned lock only means a panic elsewhere mid-update; the map is still usable.
        self.overlays[entity.slot()]
            .read()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn overlay_mut(
        &self,
        entity: Entity,
    ) -> std::sync::RwLockWriteGuard<'_, BTreeMap<u64, Overlay>> {
        self.overlays[entity.slot()]
            .write()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// The record number for `id` if such a record exists.
    pub(crate) fn lookup(&self, entity: Entity, id: &str) -> Option<u64> {
        let n = entity.parse_id(id)? as u64;
        (1..=self.gen.count(entity)).contains(&n).then_some(n)
    }

    fn tick(&self) -> i64 {
        self.clock.fetch_add(1, Ordering::Relaxed)
    }

    /// Shallow-merges `patch` into record `n` and gives it a new latest timestamp.
    pub(crate) fn patch(&self, entity: Entity, n: u64, patch: Map<String, Value>) {
        let mut overlays = self.overlay_mut(entity);
        let updated_at = self.tick();
        let entry = overlays.entry(n).or_insert(Overlay {
            updated_at,
            patch: None,
        });
        entry.updated_at = updated_at;
        let merged = entry.patch.get_or_insert_with(Map::new);
        for (key, value) in patch {
            // The id is the record's identity and updated_at is ours to assign.
            if key != "id" && key != "updated_at" {
                merged.insert(key, value);
            }
        }
    }

    /// Gives each record a new latest timestamp without changing its content.
    pub(crate) fn touch(&self, entity: Entity, numbers: &[u64]) {
        let mut overlays = self.overlay_mut(entity);
        for &n in numbers {
            let updated_at = self.tick();
            overlays
                .entry(n)
                .or_insert(Overlay {
                    updated_at,
                    patch: None,
                })
                .updated_at = updated_at;
        }
    }

    /// Touches an evenly spread, seed-determined `fraction` of the records (at least one when
    /// the fraction is positive) and returns their numbers in order.
    pub(crate) fn touch_fraction(&self, entity: Entity, fraction: f64) -> Vec<u64> {
        let count = self.gen.count(entity);
        if count == 0 || fraction.is_nan() || fraction <= 0.0 {
            return Vec::new();
        }
        // The epsilon keeps float noise (0.07 * 100 = 7.000000000000001) from adding a record.
        let k = ((fraction.min(1.0) * count as f64 - 1e-9).ceil() as u64).clamp(1, count);
        let stride = count as f64 / k as f64;
        let call = self.touch_calls.fetch_add(1, Ordering::Relaxed);
        let offset = unit(hash3(
            self.gen.seed ^ salt::TOUCH,
            entity.slot() as u64,
            call,
        )) * stride;
        let numbers: Vec<u64> = (0..k)
            .map(|j| ((offset + j as f64 * stride) as u64 + 1).min(count))
            .collect();
        self.touch(entity, &numbers);
        numbers
    }

    /// Runs `f` over a consistent snapshot of `entity` restricted to `updated_at >= since`.
    pub(crate) fn with_view<R>(
        &self,
        entity: Entity,
        since: Option<i64>,
        f: impl FnOnce(&View<'_>) -> R,
    ) -> R {
        let overlay = self.overlay(entity);
        let count = self.gen.count(entity);
        let (lo, extras) = match since {
            None => (1, Vec::new()),
            Some(since) => {
                // Base timestamps are EPOCH + n, so untouched matches are exactly n >= lo, and
                // every overlay timestamp is newer than any base one, so overlay entries at or
                // above lo match too. Only modified records below lo need checking one by one.
                let lo = since
                    .saturating_sub(Generator::base_updated_at(0))
                    .clamp(1, count.saturating_add(1) as i64) as u64;
                let extras = overlay
                    .range(..lo)
                    .filter(|(_, o)| o.updated_at >= since)
                    .map(|(&n, _)| n)
                    .collect();
                (lo, extras)
            }
        };
        f(&View {
            gen: &self.gen,
            entity,
            overlay: &overlay,
            lo,
            count,
            extras,
        })
    }
}

/// An ordered (by id) selection of one entity's records.
#[derive(Debug)]
pub(crate) struct View<'a> {
    gen: &'a Generator,
    entity: Entity,
    overlay: &'a BTreeMap<u64, Overlay>,
    /// Every record from `lo` to `count` is selected...
    lo: u64,
    count: u64,
    /// ...plus these (all below `lo`, ascending).
    extras: Vec<u64>,
}

impl View<'_> {
    pub(crate) fn total(&self) -> u64 {
        self.extras.len() as u64 + (self.count + 1).saturating_sub(self.lo)
    }

    /// Selected record numbers greater than `after`, ascending.
    pub(crate) fn after(&self, after: u64) -> impl Iterator<Item = u64> + '_ {
        let start = self.extras.partition_point(|&n| n <= after);
        self.extras[start..]
            .iter()
            .copied()
            .chain(self.lo.max(after + 1)..=self.count)
    }

    /// Selected record numbers from position `offset` on.
    pub(crate) fn skipping(&self, offset: u64) -> impl Iterator<Item = u64> + '_ {
        let skip_extras = (offset as usize).min(self.extras.len());
        let base_start = self.lo.saturating_add(offset - skip_extras as u64);
        self.extras[skip_extras..]
            .iter()
            .copied()
            .chain(base_start..=self.count)
    }

    /// The record as served, as a JSON value.
    pub(crate) fn value(&self, n: u64, faults: &RecordFaults<'_>) -> Value {
        let mut value = self.plain_value(n);
        faults.apply(self.gen, n, &faults.kinds(n), &mut value);
        value
    }

    /// Records changed since generation with their change times, by number.
    pub(crate) fn modified_records(&self) -> impl Iterator<Item = (u64, i64)> + '_ {
        self.overlay.iter().map(|(&n, o)| (n, o.updated_at))
    }

    /// How many records the entity has (selected or not).
    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    /// When record `n` last changed (Unix seconds).
    pub(crate) fn updated_at(&self, n: u64) -> i64 {
        self.overlay
            .get(&n)
            .map_or(Generator::base_updated_at(n), |o| o.updated_at)
    }

    /// The record with its patches but without record faults: personas render this in their
    /// provider's shape and then apply the faults in that shape.
    pub(crate) fn plain_value(&self, n: u64) -> Value {
        let overlay = self.overlay.get(&n);
        let updated_at = overlay.map_or(Generator::base_updated_at(n), |o| o.updated_at);
        let mut value = self.gen.record(self.entity, n, updated_at).to_value();
        if let (Some(patch), Value::Object(map)) =
            (overlay.and_then(|o| o.patch.as_ref()), &mut value)
        {
            for (key, v) in patch {
                map.insert(key.clone(), v.clone());
            }
        }
        value
    }

    /// Appends the records as comma-separated JSON; returns how many were written.
    pub(crate) fn write(
        &self,
        buf: &mut Vec<u8>,
        numbers: &[u64],
        faults: &RecordFaults<'_>,
    ) -> Result<u64, serde_json::Error> {
        for (i, &n) in numbers.iter().enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            let overlay = self.overlay.get(&n);
            let patched = overlay.is_some_and(|o| o.patch.is_some());
            if patched || faults.has_drift() || !faults.kinds(n).is_empty() {
                serde_json::to_writer(&mut *buf, &self.value(n, faults))?;
            } else {
                // Fast path: typed struct straight into the buffer, no JSON tree.
                let updated_at = overlay.map_or(Generator::base_updated_at(n), |o| o.updated_at);
                self.gen.record(self.entity, n, updated_at).write_json(buf);
            }
        }
        Ok(numbers.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::Faults;
    use crate::time::EPOCH;

    fn store() -> Store {
        Store::new(Generator {
            seed: 1,
            counts: [100, 10, 10, 10],
        })
    }

    fn ids(view: &View<'_>) -> Vec<u64> {
        view.after(0).collect()
    }

    #[test]
    fn since_selects_suffix_plus_modified() {
        let s = store();
        assert_eq!(s.with_view(Entity::Customers, None, |v| v.total()), 100);
        let since = Some(EPOCH + 91);
        assert_eq!(
            s.with_view(Entity::Customers, since, ids),
            (91..=100).collect::<Vec<_>>()
        );
        s.touch(Entity::Customers, &[5, 95]);
        s.patch(Entity::Customers, 7, Map::new());
        let got = s.with_view(Entity::Customers, since, ids);
        let mut want = vec![5, 7];
        want.extend(91..=100);
        assert_eq!(got, want);
        // Only the modified ones are newer than every base record.
        let after_all = Some(EPOCH + 101);
        assert_eq!(
            s.with_view(Entity::Customers, after_all, ids),
            vec![5, 7, 95]
        );
        assert_eq!(
            s.with_view(Entity::Customers, Some(EPOCH + 10_000), |v| v.total()),
            0
        );
    }

    #[test]
    fn offsets_and_cursors_agree() {
        let s = store();
        s.touch(Entity::Customers, &[3, 4]);
        s.with_view(Entity::Customers, Some(EPOCH + 50), |v| {
            let all: Vec<u64> = v.after(0).collect();
            assert_eq!(all.len() as u64, v.total());
            for off in 0..all.len() {
                assert_eq!(v.skipping(off as u64).collect::<Vec<_>>(), all[off..]);
            }
            assert_eq!(v.after(4).next(), Some(50));
            assert_eq!(v.after(3).next(), Some(4));
        });
    }

    #[test]
    fn patched_records_move_past_everything() {
        let s = store();
        let mut patch = Map::new();
        patch.insert("name".into(), "Renamed".into());
        patch.insert("id".into(), "cus_99".into());
        s.patch(Entity::Customers, 2, patch);
        let faults = Faults::default();
        let rf = RecordFaults::new(&faults, Entity::Customers, 1);
        let v = s.with_view(Entity::Customers, None, |v| v.value(2, &rf));
        assert_eq!(v["name"], "Renamed");
        assert_eq!(v["id"], "cus_00000002");
        assert_eq!(v["updated_at"], "2026-01-01T00:01:41Z");
    }

    #[test]
    fn touch_fraction_is_spread_and_deterministic() {
        let a = store().touch_fraction(Entity::Customers, 0.1);
        let b = store().touch_fraction(Entity::Customers, 0.1);
        assert_eq!(a, b);
        assert_eq!(a.len(), 10);
        assert!(a.windows(2).all(|w| w[1] - w[0] >= 9));
        assert_eq!(
            store().touch_fraction(Entity::Customers, 0.0),
            Vec::<u64>::new()
        );
        assert_eq!(store().touch_fraction(Entity::Customers, 0.001).len(), 1);
        assert_eq!(store().touch_fraction(Entity::Customers, 0.07).len(), 7);
        assert_eq!(
            store().touch_fraction(Entity::Customers, 1.0),
            (1..=100).collect::<Vec<_>>()
        );
    }
}
