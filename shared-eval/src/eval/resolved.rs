//! A context resolved against one snapshot ([`Resolved`]): one slot per interned attribute,
//! filled in one pass over the context, shared by every flag of a request.

use alloc::{string::String, vec::Vec};
use serde_json::{Map, Value};

use crate::{Context, SemVer, Snapshot, datetime, intern::NO_TEXT, parse_semver};

/// A context resolved against one snapshot, for evaluating many flags for one request: the
/// context is walked once, each attribute the blob interns gets a slot with its value (and, for
/// attributes a semver test reads, the value parsed as a version), and flags then read slots by
/// attribute id. Build it with [`Snapshot::resolve`], evaluate with [`super::evaluate_resolved`];
/// [`super::evaluate_all`] does both.
#[derive(Debug)]
pub struct Resolved<'s, 'c> {
    pub(super) snapshot: &'s Snapshot,
    pub(super) ctx: Context<'c>,
    /// One per `body.attrs` entry: the signed attributes' value.
    pub(super) signed: Vec<Slot<'c>>,
    /// One per `body.attrs` entry (empty without unsigned attributes): the unsigned value, read
    /// only by flags that allow it and only when the signed attributes lack it.
    pub(super) unsigned: Vec<Slot<'c>>,
}

/// One attribute's value in one half of the context, and that value as a version when a semver
/// test needs it, as milliseconds since the epoch when a `before`/`after` test does.
#[derive(Debug)]
pub(crate) struct Slot<'c> {
    pub(super) value: Option<&'c Value>,
    /// The value's text id ([`crate::intern::Texts::id_of_value`]) when a string or list test reads the
    /// attribute, else [`NO_TEXT`].
    pub(super) text: u32,
    pub(super) semver: Option<SemVer>,
    pub(super) millis: Option<f64>,
}

impl Default for Slot<'_> {
    fn default() -> Self {
        Slot {
            value: None,
            text: NO_TEXT,
            semver: None,
            millis: None,
        }
    }
}

impl Snapshot {
    /// Prepares `ctx` for evaluating several flags of this snapshot: one pass over the
    /// context's attributes fills one slot per attribute the blob interns (two allocations,
    /// bounded by the blob; versions parsed only for attributes a semver test reads).
    pub fn resolve<'s, 'c>(&'s self, ctx: &Context<'c>) -> Resolved<'s, 'c> {
        let signed = self.resolve_half(Some(ctx.signed));
        let unsigned = match ctx.unsigned {
            Some(map) if !map.is_empty() => self.resolve_half(Some(map)),
            _ => Vec::new(),
        };
        Resolved {
            snapshot: self,
            ctx: *ctx,
            signed,
            unsigned,
        }
    }

    fn resolve_half<'c>(&self, map: Option<&'c Map<String, Value>>) -> Vec<Slot<'c>> {
        let attrs = &self.blob.body.attrs;
        let prepared = &self.prepared;
        let mut slots = Vec::new();
        slots.resize_with(attrs.len(), Slot::default);
        let Some(map) = map else {
            return slots;
        };
        for (key, value) in map {
            let root = prepared.root_index.find(key, |i| {
                let first = prepared.roots.get(i)?.first()?;
                attrs.get(*first as usize)?.first().map(String::as_str)
            });
            let Some(ids) = root.and_then(|i| prepared.roots.get(i)) else {
                continue;
            };
            for id in ids {
                let (Some(path), Some(slot)) =
                    (attrs.get(*id as usize), slots.get_mut(*id as usize))
                else {
                    continue;
                };
                let mut found = Some(value);
                for segment in path.iter().skip(1) {
                    found = found
                        .and_then(Value::as_object)
                        .and_then(|object| crate::context::get(object, segment));
                }
                slot.value = found;
                if prepared.text_attrs.get(*id as usize) == Some(&true) {
                    slot.text = prepared.texts.id_of_value(found);
                }
                if prepared.semver_attrs.get(*id as usize) == Some(&true) {
                    slot.semver = found.and_then(Value::as_str).and_then(parse_semver);
                }
                if prepared.time_attrs.get(*id as usize) == Some(&true) {
                    slot.millis = found.and_then(datetime::value_to_millis);
                }
            }
        }
        slots
    }
}

/// A resolved context's signed and unsigned slots.
pub(super) type Halves<'r, 'c> = (&'r [Slot<'c>], &'r [Slot<'c>]);

impl<'c> Resolved<'_, 'c> {
    pub(super) fn halves(&self) -> Halves<'_, 'c> {
        (&self.signed, &self.unsigned)
    }
}

impl<'s> Resolved<'s, '_> {
    /// The snapshot this context was resolved against.
    pub fn snapshot(&self) -> &'s Snapshot {
        self.snapshot
    }
}
