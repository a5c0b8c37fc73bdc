//! Scans at the node that takes them: every item of a table in one segment of the ring, in
//! ring order, a page at a time (`docs/items.md`).
//!
//! A segment is one of `total_segments` equal slices of the token circle. The node walks its
//! slice one ring arc at a time (the keys of an arc share a preference list): it asks the arc's
//! replicas, as a get would (home replicas only for a consistent scan), for the table's records
//! after its position (`ScanRead`), and at R pages merges them as a query does: versions united
//! per key, resolved to items, deleted ones skipped, and only up to the earliest point where a
//! replica stopped. Then it moves on, to where that replica stopped or to the next arc, until
//! the page holds `limit` items evaluated, about 1 MB, or the slice ends. `last` names the last
//! item evaluated when the slice has more.
//!
//! # Limits
//! - Arcs are read one after another: a page costs one round trip per arc it crosses (a ring of
//!   5 nodes with 16 vnodes each has 80 arcs), even where the table has nothing.
//! - A replica reads every record of the range to find the table's (one store of all tables):
//!   at most `MAX_EXAMINED` per `ScanRead`, then it says where it stopped.
//!
//! # Invariants
//! - A scan answers its client exactly once: with a page, with the first arc's quorum failure,
//!   or at its deadline.
//! - Positions only move forward within the slice (checked), so a scan ends.

use super::coordinator::{Operation, ReplyTo};
use super::query::MAX_PAGE_BYTES;
use super::quorum_read::read_quorum_error;
use super::{Node, Release, Timer};
use crate::NodeId;
use crate::item::TableId;
use crate::item::key::{ItemKey, table_of};
use crate::protocol::{KeyVersions, OpId, PeerMessage, TablePage};
use crate::request::{
    ClientOp, ClientReply, ClientRequest, ReplicaFailure, RequestError, ScanRequest,
};
use crate::ring::{Token, TokenRange, key_token};
use crate::store::Store;
use crate::store::layout::{cursor_after, data_key, split_data_key};
use crate::version::VersionSet;
use std::collections::BTreeMap;

/// The most records of all tables a replica reads for one `ScanRead`.
const MAX_EXAMINED: usize = 4096;

/// The most items one page evaluates.
const MAX_SCAN_PAGE_ITEMS: u32 = 10_000;

/// The most segments (DynamoDB's limit).
const MAX_SEGMENTS: u32 = 1_000_000;

/// Where a scan is: the first token still to read, and the storage key it read last there.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Position {
    token: u64,
    after: Option<Vec<u8>>,
}

pub(super) struct ScanOp {
    reply_to: ReplyTo,
    request: ScanRequest,
    /// The slice's last token.
    end: u64,
    position: Position,
    /// The current step: its number (echoed by replicas, so that a late page of an earlier
    /// step is not taken for this one's), the arc's last token, the replicas asked and their
    /// pages.
    step: u32,
    step_end: u64,
    r: u8,
    targets: Vec<NodeId>,
    responses: Vec<(NodeId, TablePage)>,
    failures: Vec<(NodeId, ReplicaFailure)>,
    limit: u32,
    items: Vec<crate::item::Item>,
    scanned: u32,
    bytes: usize,
    last: Option<Vec<u8>>,
}

impl ScanOp {
    /// The current step's quorum failure.
    fn quorum_error(&self) -> RequestError {
        let answered = self.responses.iter().map(|(n, _)| *n);
        read_quorum_error(self.r, &self.targets, answered, &self.failures)
    }
}

/// The slice of the token circle `segment` of `total` covers: `[start, end]`.
fn segment_tokens(segment: u32, total: u32) -> (u64, u64) {
    let width = |s: u32| (u128::from(s) << 64) / u128::from(total);
    let start = u64::try_from(width(segment)).unwrap_or(u64::MAX);
    let end = if segment + 1 >= total {
        u64::MAX
    } else {
        u64::try_from(width(segment + 1))
            .unwrap_or(u64::MAX)
            .saturating_sub(1)
    };
    (start, end)
}

impl<S: Store> Node<S> {
    pub(super) fn start_scan(&mut self, reply_to: ReplyTo, request: ClientRequest) {
        let r = request.r;
        let timeout = request.timeout_ms.map_or(
            self.config.request_timeout,
            std::time::Duration::from_millis,
        );
        let ClientOp::Scan(scan) = request.op else {
            return;
        };
        let scan = *scan;
        let checked = self.check_scan(&scan);
        if let Err(e) = checked {
            self.stats.requests_failed += 1;
            self.answer(reply_to, Err(e), Release::Now);
            return;
        }
        let (start, end) = segment_tokens(scan.segment, scan.total_segments);
        let mut position = Position {
            token: start,
            after: None,
        };
        if let Some(key) = &scan.start_after {
            let encoded = ItemKey {
                table: scan.table_id,
                key: key.clone(),
            }
            .encode();
            let token = key_token(&encoded).0;
            if token < start || token > end {
                self.stats.requests_failed += 1;
                let e = RequestError::InvalidItem {
                    message: "the start key does not belong to this segment".into(),
                };
                self.answer(reply_to, Err(e), Release::Now);
                return;
            }
            position = Position {
                token,
                after: Some(data_key(&encoded)),
            };
        }
        let (table_r, _) = self.table_quorums(scan.table_id);
        let r = r.or(table_r).unwrap_or(self.config.r);
        let r = if scan.consistent {
            r.max(self.config.n / 2 + 1)
        } else {
            r
        };
        let limit = scan
            .limit
            .unwrap_or(MAX_SCAN_PAGE_ITEMS)
            .clamp(1, MAX_SCAN_PAGE_ITEMS);
        let op = self.new_op_id();
        let state = ScanOp {
            reply_to,
            request: scan,
            end,
            position,
            step: 0,
            step_end: end,
            r,
            targets: Vec::new(),
            responses: Vec::new(),
            failures: Vec::new(),
            limit,
            items: Vec::new(),
            scanned: 0,
            bytes: 0,
            last: None,
        };
        self.ops.insert(op, Operation::Scan(Box::new(state)));
        self.timers.set(Timer::OpDeadline(op), self.now + timeout);
        self.scan_step(op);
    }

    fn check_scan(&self, scan: &ScanRequest) -> Result<(), RequestError> {
        scan.table.schema.check()?;
        if scan.total_segments == 0
            || scan.total_segments > MAX_SEGMENTS
            || scan.segment >= scan.total_segments
        {
            return Err(RequestError::InvalidItem {
                message: format!(
                    "segment {} of {} segments: TotalSegments must be 1 to {MAX_SEGMENTS} and \
                     Segment below it",
                    scan.segment, scan.total_segments
                ),
            });
        }
        self.check_item_table(&scan.table, scan.table_id)
    }

    /// Reads the arc the scan's position is in.
    fn scan_step(&mut self, op: OpId) {
        let Some(ring) = self.ring.as_ref() else {
            self.finish_scan(op, Err(RequestError::NoReplicas));
            return;
        };
        let Some(Operation::Scan(scan)) = self.ops.get(&op) else {
            return;
        };
        let token = scan.position.token;
        // The arc ending at the first vnode token at or after the position; past the largest
        // token, the arc wraps to the smallest, and the slice (which never wraps) ends first.
        let arc_end = ring.tokens()[ring.successor_index(Token(token))].0;
        let step_end = if arc_end >= token {
            arc_end.min(scan.end)
        } else {
            scan.end
        };
        let home_only = scan.request.consistent;
        let targets = self.read_targets_for_token(Token(arc_end), home_only);
        let range = TokenRange::new(Token(token.wrapping_sub(1)), Token(step_end));
        let after = scan.position.after.clone();
        let table = scan.request.table_id;
        let limit = scan.limit - scan.scanned;
        let Some(Operation::Scan(scan)) = self.ops.get_mut(&op) else {
            return;
        };
        scan.step = scan.step.wrapping_add(1);
        let step = scan.step;
        scan.step_end = step_end;
        scan.targets = targets.clone();
        scan.responses.clear();
        scan.failures.clear();
        for target in targets {
            if target == self.id {
                let page = self.table_page(table, range, after.as_deref(), limit);
                if let Some(Operation::Scan(scan)) = self.ops.get_mut(&op) {
                    match page {
                        Ok(page) => scan.responses.push((target, page)),
                        Err(f) => scan.failures.push((target, f)),
                    }
                }
            } else {
                let message = PeerMessage::ScanRead {
                    op,
                    step,
                    table,
                    range,
                    after: after.clone(),
                    limit,
                };
                self.send(target, message);
            }
        }
        self.check_scan_step(op);
    }

    /// A replica's page: the table's records of `range` after `after`, at most `limit`, having
    /// read at most [`MAX_EXAMINED`] records.
    fn table_page(
        &self,
        table: TableId,
        range: TokenRange,
        after: Option<&[u8]>,
        limit: u32,
    ) -> Result<TablePage, ReplicaFailure> {
        let storage = |e: crate::store::StoreError| ReplicaFailure::Storage {
            detail: e.to_string(),
        };
        let limit = limit.clamp(1, MAX_SCAN_PAGE_ITEMS) as usize;
        let mut cursor = after.map(|k| cursor_after(k.to_vec()));
        let mut entries = Vec::new();
        let mut examined = 0;
        let mut bytes = 0;
        loop {
            let page = self
                .store
                .scan(range, cursor.as_ref(), 256)
                .map_err(storage)?;
            for entry in page.entries {
                examined += 1;
                let storage_key = data_key(&entry.key);
                if table_of(&entry.key) == Some(table) {
                    let item = KeyVersions {
                        key: entry.key,
                        versions: entry.versions,
                    };
                    bytes += item.approx_bytes();
                    entries.push(item);
                }
                if entries.len() >= limit || examined >= MAX_EXAMINED || bytes >= MAX_PAGE_BYTES {
                    return Ok(TablePage {
                        entries,
                        resume_after: Some(storage_key),
                    });
                }
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => {
                    return Ok(TablePage {
                        entries,
                        resume_after: None,
                    });
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_scan_read(
        &mut self,
        from: NodeId,
        op: OpId,
        step: u32,
        table: TableId,
        range: TokenRange,
        after: Option<Vec<u8>>,
        limit: u32,
    ) {
        let outcome = self.table_page(table, range, after.as_deref(), limit);
        self.send(from, PeerMessage::ScanReadReply { op, step, outcome });
    }

    pub(super) fn on_scan_read_reply(
        &mut self,
        from: NodeId,
        op: OpId,
        step: u32,
        outcome: Result<TablePage, ReplicaFailure>,
    ) {
        let Some(Operation::Scan(scan)) = self.ops.get_mut(&op) else {
            return;
        };
        let known = step == scan.step
            && scan.targets.contains(&from)
            && !scan.responses.iter().any(|(n, _)| *n == from)
            && !scan.failures.iter().any(|(n, _)| *n == from);
        if !known {
            return;
        }
        match outcome {
            Ok(page) => scan.responses.push((from, page)),
            Err(f) => scan.failures.push((from, f)),
        }
        self.check_scan_step(op);
    }

    /// At R pages: merges the step, then answers or reads on.
    fn check_scan_step(&mut self, op: OpId) {
        let Some(Operation::Scan(scan)) = self.ops.get(&op) else {
            return;
        };
        let r = usize::from(scan.r);
        if scan.responses.len() < r {
            if scan.targets.len() - scan.failures.len() < r {
                let e = scan.quorum_error();
                self.finish_scan(op, Err(e));
            }
            return;
        }
        let Some(Operation::Scan(mut scan)) = self.ops.remove(&op) else {
            return;
        };
        // Keys past the earliest point where a replica stopped are unknown to it.
        let cutoff: Option<Vec<u8>> = scan
            .responses
            .iter()
            .filter_map(|(_, page)| page.resume_after.clone())
            .min();
        let mut merged: BTreeMap<Vec<u8>, (Vec<u8>, VersionSet)> = BTreeMap::new();
        let lower = scan.position.after.clone();
        for (_, page) in &scan.responses {
            for entry in &page.entries {
                let storage_key = data_key(&entry.key);
                let token = key_token(&entry.key).0;
                // A record outside what was asked is dropped, whatever the replica sent.
                let in_step = (scan.position.token..=scan.step_end).contains(&token)
                    && cutoff.as_ref().is_none_or(|c| storage_key <= *c)
                    && lower.as_ref().is_none_or(|l| storage_key > *l)
                    && table_of(&entry.key) == Some(scan.request.table_id);
                if in_step {
                    merged
                        .entry(storage_key)
                        .or_insert_with(|| (entry.key.clone(), VersionSet::new()))
                        .1
                        .merge(&entry.versions);
                }
            }
        }
        let mut stopped_at = None;
        for (storage_key, (key, set)) in &merged {
            let state = match self.resolve_item(set.siblings().map(|(_, v)| v)) {
                Ok(state) => state,
                Err(e) => {
                    let e = RequestError::Storage {
                        detail: format!("stored item does not decode: {e}"),
                    };
                    self.ops.insert(op, Operation::Scan(scan));
                    self.finish_scan(op, Err(e));
                    return;
                }
            };
            let Some(item) = state.item() else {
                continue;
            };
            scan.scanned += 1;
            scan.bytes += item.size_bytes();
            scan.last = Some(key.clone());
            let keep = scan
                .request
                .filter
                .as_ref()
                .is_none_or(|filter| filter.holds(Some(&item)));
            if keep {
                scan.items.push(item);
            }
            if scan.scanned >= scan.limit || scan.bytes >= MAX_PAGE_BYTES {
                stopped_at = Some(storage_key.clone());
                break;
            }
        }
        let full = stopped_at.is_some();
        // Where the next step (or page) starts.
        let next = match (stopped_at, cutoff) {
            (Some(at), _) | (None, Some(at)) => match split_data_key(&at) {
                Ok((token, _)) => Some(Position {
                    token: token.0,
                    after: Some(at),
                }),
                Err(_) => None,
            },
            (None, None) => scan
                .step_end
                .checked_add(1)
                .map(|token| Position { token, after: None }),
        };
        let next = next.filter(|p| p.token <= scan.end);
        invariant!(
            next.as_ref().is_none_or(|p| *p > scan.position),
            "a scan went back"
        );
        let reply_to = scan.reply_to;
        match next {
            Some(position) if !full => {
                scan.position = position;
                self.ops.insert(op, Operation::Scan(scan));
                self.scan_step(op);
            }
            more => {
                self.timers.cancel(Timer::OpDeadline(op));
                let last = match (more, scan.last) {
                    (Some(_), Some(key)) => ItemKey::decode(&key).ok().map(|k| k.key),
                    _ => None,
                };
                self.stats.reads_ok += 1;
                let reply = ClientReply::Items {
                    items: scan.items,
                    scanned: scan.scanned,
                    last,
                };
                self.answer(reply_to, Ok(reply), Release::Now);
            }
        }
    }

    fn finish_scan(&mut self, op: OpId, result: Result<ClientReply, RequestError>) {
        if let Some(Operation::Scan(scan)) = self.ops.remove(&op) {
            self.timers.cancel(Timer::OpDeadline(op));
            if result.is_err() {
                self.stats.requests_failed += 1;
            }
            self.answer(scan.reply_to, result, Release::Now);
        }
    }

    pub(super) fn on_scan_deadline(&mut self, scan: ScanOp) {
        self.stats.requests_failed += 1;
        let e = scan.quorum_error();
        self.answer(scan.reply_to, Err(e), Release::Now);
    }
}

#[cfg(test)]
mod tests {
    use super::segment_tokens;

    #[test]
    fn segments_tile_the_circle() {
        for total in [1, 2, 3, 7, 1000] {
            let mut next = 0u64;
            for segment in 0..total {
                let (start, end) = segment_tokens(segment, total);
                assert_eq!(start, next, "segment {segment} of {total}");
                assert!(end >= start);
                next = end.wrapping_add(1);
            }
            assert_eq!(
                next, 0,
                "the last segment of {total} ends at the circle's end"
            );
        }
    }
}
