//! Queries at the coordinator: the items of one partition in sort-key order, read from R
//! replicas and merged item by item (`docs/items.md`).
//!
//! A partition's items share one preference list and one contiguous run of each replica's
//! storage (`item::key`), so a query is one `QueryRead` per replica, each answered by one
//! `Store::scan_partition`. The coordinator asks the replicas a get would ask (a consistent
//! query: the partition's home replicas, a majority at least), and at R pages merges them:
//! - every key any page holds, with the union of their versions, resolved to one item by the
//!   merge rule; deleted items are skipped;
//! - **only up to the shortest page**: a page cut short (its limit or 1 MB) says nothing of the
//!   keys beyond its last, so keys past the earliest such last key wait for the next page;
//! - the limit counts items evaluated, then the filter drops what it rejects (DynamoDB's
//!   order), and `last` names the last item evaluated when more may follow;
//! - every answering replica whose page lacked a key or held other versions of it is repaired
//!   with the merged set (read repair, per item).
//!
//! # Invariants
//! - A query answers its client exactly once: at R pages, when R can no longer be reached, or
//!   at its deadline.
//! - The items returned lie in the requested range, in the requested order: a replica's record
//!   outside the range is dropped, whatever the replica sent.

use super::coordinator::{Operation, ReplyTo};
use super::quorum_read::read_quorum_error;
use super::{Node, Release, Timer};
use crate::NodeId;
use crate::item::key::{ItemKey, partition_prefix};
use crate::item::{ItemError, KeyType, KeyValue};
use crate::protocol::{KeyBound, KeyVersions, OpId, PeerMessage, QueryPage};
use crate::request::{ClientReply, QueryRequest, ReplicaFailure, RequestError, SortKeyCondition};
use crate::store::Store;
use crate::version::VersionSet;
use std::collections::BTreeMap;
use std::time::Duration;

/// The most records one page holds (with the size bound, DynamoDB's 1 MB).
pub(super) const MAX_PAGE_ITEMS: u32 = 10_000;

/// The most bytes of records one page holds (DynamoDB: 1 MB).
pub(super) const MAX_PAGE_BYTES: usize = 1024 * 1024;

pub(super) struct QueryOp {
    reply_to: ReplyTo,
    request: QueryRequest,
    prefix: Vec<u8>,
    from: KeyBound,
    to: KeyBound,
    limit: u32,
    r: u8,
    targets: Vec<NodeId>,
    responses: Vec<(NodeId, QueryPage)>,
    failures: Vec<(NodeId, ReplicaFailure)>,
}

impl QueryOp {
    pub(super) fn quorum_error(&self) -> RequestError {
        let answered = self.responses.iter().map(|(n, _)| *n);
        read_quorum_error(self.r, &self.targets, answered, &self.failures)
    }
}

/// The key range a query reads: the partition, narrowed by its sort-key condition and its
/// start key.
pub(super) fn query_bounds(request: &QueryRequest) -> Result<(KeyBound, KeyBound), RequestError> {
    let schema = &request.table.schema;
    let prefix = partition_prefix(request.table_id, &request.partition);
    let key_of = |value: &KeyValue| {
        let mut key = prefix.clone();
        value.encode_ordered(&mut key);
        key
    };
    let sort_type = schema.sort.as_ref().map(|s| s.key_type);
    let mut from = KeyBound::Unbounded;
    let mut to = KeyBound::Unbounded;
    if let Some(condition) = &request.sort {
        let values: Vec<&KeyValue> = match condition {
            SortKeyCondition::Between(a, b) => vec![a, b],
            SortKeyCondition::Eq(v)
            | SortKeyCondition::Lt(v)
            | SortKeyCondition::Le(v)
            | SortKeyCondition::Gt(v)
            | SortKeyCondition::Ge(v)
            | SortKeyCondition::BeginsWith(v) => vec![v],
        };
        if values.iter().any(|v| Some(v.key_type()) != sort_type) {
            return Err(ItemError::KeyMismatch.into());
        }
        match condition {
            SortKeyCondition::Eq(v) => {
                from = KeyBound::Included(key_of(v));
                to = KeyBound::Included(key_of(v));
            }
            SortKeyCondition::Lt(v) => to = KeyBound::Excluded(key_of(v)),
            SortKeyCondition::Le(v) => to = KeyBound::Included(key_of(v)),
            SortKeyCondition::Gt(v) => from = KeyBound::Excluded(key_of(v)),
            SortKeyCondition::Ge(v) => from = KeyBound::Included(key_of(v)),
            SortKeyCondition::Between(a, b) => {
                from = KeyBound::Included(key_of(a));
                to = KeyBound::Included(key_of(b));
            }
            SortKeyCondition::BeginsWith(v) => {
                if sort_type == Some(KeyType::N) {
                    return Err(RequestError::InvalidItem {
                        message: "begins_with applies to string and binary sort keys".into(),
                    });
                }
                // The encoding without its terminator is a prefix of the encoding of every
                // string (or binary) that begins with `v`.
                let mut start = key_of(v);
                start.truncate(start.len().saturating_sub(2));
                to = match prefix_successor(&start) {
                    Some(end) => KeyBound::Excluded(end),
                    None => KeyBound::Unbounded,
                };
                from = KeyBound::Included(start);
            }
        }
    }
    if let Some(start) = &request.start_after {
        if start.partition != request.partition || start.sort.is_some() != sort_type.is_some() {
            return Err(ItemError::KeyMismatch.into());
        }
        let key = ItemKey {
            table: request.table_id,
            key: start.clone(),
        }
        .encode();
        if request.forward {
            from = tighter_lower(from, KeyBound::Excluded(key));
        } else {
            to = tighter_upper(to, KeyBound::Excluded(key));
        }
    }
    Ok((from, to))
}

/// The smallest byte string greater than every string that starts with `bytes`.
fn prefix_successor(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut end = bytes.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

fn tighter_lower(a: KeyBound, b: KeyBound) -> KeyBound {
    let rank = |bound: &KeyBound| match bound {
        KeyBound::Unbounded => (Vec::new(), 0),
        KeyBound::Included(k) => (k.clone(), 1),
        KeyBound::Excluded(k) => (k.clone(), 2),
    };
    if rank(&b) > rank(&a) { b } else { a }
}

fn tighter_upper(a: KeyBound, b: KeyBound) -> KeyBound {
    match (&a, &b) {
        (KeyBound::Unbounded, _) => b,
        (_, KeyBound::Unbounded) => a,
        (
            KeyBound::Included(x) | KeyBound::Excluded(x),
            KeyBound::Included(y) | KeyBound::Excluded(y),
        ) => {
            if y < x || (y == x && matches!(b, KeyBound::Excluded(_))) {
                b
            } else {
                a
            }
        }
    }
}

fn within(key: &[u8], from: &KeyBound, to: &KeyBound) -> bool {
    let above = match from {
        KeyBound::Unbounded => true,
        KeyBound::Included(k) => key >= k.as_slice(),
        KeyBound::Excluded(k) => key > k.as_slice(),
    };
    let below = match to {
        KeyBound::Unbounded => true,
        KeyBound::Included(k) => key <= k.as_slice(),
        KeyBound::Excluded(k) => key < k.as_slice(),
    };
    above && below
}

impl<S: Store> Node<S> {
    pub(super) fn start_query(
        &mut self,
        reply_to: ReplyTo,
        request: QueryRequest,
        r: u8,
        timeout: Duration,
    ) {
        let (from, to) = match query_bounds(&request) {
            Ok(bounds) => bounds,
            Err(e) => {
                self.stats.requests_failed += 1;
                self.answer(reply_to, Err(e), Release::Now);
                return;
            }
        };
        let prefix = partition_prefix(request.table_id, &request.partition);
        let (r, home_only) = if request.consistent {
            (r.max(self.config.n / 2 + 1), true)
        } else {
            (r, false)
        };
        let targets = self.read_targets(&prefix, home_only);
        let limit = request
            .limit
            .unwrap_or(MAX_PAGE_ITEMS)
            .clamp(1, MAX_PAGE_ITEMS);
        let op = self.new_op_id();
        let mut query = QueryOp {
            reply_to,
            prefix,
            from,
            to,
            limit,
            r,
            targets: targets.clone(),
            responses: Vec::new(),
            failures: Vec::new(),
            request,
        };
        for target in targets {
            if target == self.id {
                match self.query_page(
                    &query.prefix,
                    &query.from,
                    &query.to,
                    !query.request.forward,
                    limit,
                ) {
                    Ok(page) => query.responses.push((self.id, page)),
                    Err(f) => query.failures.push((self.id, f)),
                }
            } else {
                let message = PeerMessage::QueryRead {
                    op,
                    prefix: query.prefix.clone(),
                    from: query.from.clone(),
                    to: query.to.clone(),
                    reverse: !query.request.forward,
                    limit,
                };
                self.send(target, message);
            }
        }
        self.ops.insert(op, Operation::Query(Box::new(query)));
        self.timers.set(Timer::OpDeadline(op), self.now + timeout);
        self.check_query(op);
    }

    /// A replica's page: its records of the range, at most `limit` and about 1 MB.
    fn query_page(
        &self,
        prefix: &[u8],
        from: &KeyBound,
        to: &KeyBound,
        reverse: bool,
        limit: u32,
    ) -> Result<QueryPage, ReplicaFailure> {
        let limit = limit.clamp(1, MAX_PAGE_ITEMS) as usize;
        let entries = self
            .store
            .scan_partition(prefix, from.to_bound(), to.to_bound(), reverse, limit)
            .map_err(|e| ReplicaFailure::Storage {
                detail: e.to_string(),
            })?;
        let mut truncated = entries.len() >= limit;
        let mut bytes = 0;
        let mut page = Vec::with_capacity(entries.len());
        let mut digests = Vec::with_capacity(entries.len());
        for entry in entries {
            let item = KeyVersions {
                key: entry.key,
                versions: entry.versions,
            };
            bytes += item.approx_bytes();
            page.push(item);
            digests.push(entry.digest);
            if bytes >= MAX_PAGE_BYTES {
                truncated = true;
                break;
            }
        }
        Ok(QueryPage {
            entries: page,
            digests,
            truncated,
        })
    }

    pub(super) fn on_query_read(
        &mut self,
        from: NodeId,
        op: OpId,
        range: (Vec<u8>, KeyBound, KeyBound),
        reverse: bool,
        limit: u32,
    ) {
        let (prefix, lower, upper) = range;
        let outcome = self.query_page(&prefix, &lower, &upper, reverse, limit);
        self.send(from, PeerMessage::QueryReadReply { op, outcome });
    }

    pub(super) fn on_query_read_reply(
        &mut self,
        from: NodeId,
        op: OpId,
        outcome: Result<QueryPage, ReplicaFailure>,
    ) {
        let Some(Operation::Query(query)) = self.ops.get_mut(&op) else {
            return;
        };
        let known = query.targets.contains(&from)
            && !query.responses.iter().any(|(n, _)| *n == from)
            && !query.failures.iter().any(|(n, _)| *n == from);
        if !known {
            return;
        }
        match outcome {
            Ok(page) => query.responses.push((from, page)),
            Err(f) => query.failures.push((from, f)),
        }
        self.check_query(op);
    }

    /// Answers the query at R pages, or fails it once R cannot be reached.
    fn check_query(&mut self, op: OpId) {
        let Some(Operation::Query(query)) = self.ops.get(&op) else {
            return;
        };
        let r = if self.config.sabotaged(|s| s.query_one_replica) {
            1
        } else {
            usize::from(query.r)
        };
        let result = if query.responses.len() >= r {
            Ok(())
        } else if query.targets.len() - query.failures.len() < r {
            Err(query.quorum_error())
        } else {
            return;
        };
        let Some(Operation::Query(query)) = self.ops.remove(&op) else {
            return;
        };
        self.timers.cancel(Timer::OpDeadline(op));
        match result {
            Ok(()) => {
                let reply = self.merge_pages(&query);
                match &reply {
                    Ok(_) => self.stats.reads_ok += 1,
                    Err(_) => self.stats.requests_failed += 1,
                }
                self.answer(query.reply_to, reply, Release::Now);
            }
            Err(e) => {
                self.stats.requests_failed += 1;
                self.answer(query.reply_to, Err(e), Release::Now);
            }
        }
    }

    /// The page the client gets from the replicas' pages (module docs), with read repair.
    fn merge_pages(&mut self, query: &QueryOp) -> Result<ClientReply, RequestError> {
        let forward = query.request.forward;
        // Keys past the earliest last key of a truncated page are unknown to that replica.
        let cutoff: Option<Vec<u8>> = query
            .responses
            .iter()
            .filter(|(_, page)| page.truncated)
            .filter_map(|(_, page)| page.entries.last().map(|e| e.key.clone()))
            .reduce(|a, b| if forward { a.min(b) } else { a.max(b) });
        let before_cutoff = |key: &[u8]| match &cutoff {
            None => true,
            Some(c) if forward => key <= c.as_slice(),
            Some(c) => key >= c.as_slice(),
        };
        // Replicas that agree (the same keys with the same digests, the usual case) need no
        // merge and no repair: the first page is the answer.
        let agree = query.responses.windows(2).all(|pair| {
            let (a, b) = (&pair[0].1, &pair[1].1);
            a.digests == b.digests
                && a.entries.len() == b.entries.len()
                && a.entries
                    .iter()
                    .zip(&b.entries)
                    .all(|(x, y)| x.key == y.key)
        });
        let pages = if agree {
            &query.responses[..query.responses.len().min(1)]
        } else {
            &query.responses[..]
        };
        let mut merged: BTreeMap<Vec<u8>, VersionSet> = BTreeMap::new();
        for (_, page) in pages {
            for entry in &page.entries {
                // A replica's page must lie in the range asked; anything else is ignored.
                if before_cutoff(&entry.key) && within(&entry.key, &query.from, &query.to) {
                    merged
                        .entry(entry.key.clone())
                        .or_default()
                        .merge(&entry.versions);
                }
            }
        }
        let mut keys: Vec<&Vec<u8>> = merged.keys().collect();
        if !forward {
            keys.reverse();
        }
        let mut items = Vec::new();
        let mut scanned: u32 = 0;
        let mut last: Option<Vec<u8>> = None;
        let mut stopped_at_limit = false;
        for key in keys {
            let set = &merged[key];
            let state = self
                .resolve_item(set.siblings().map(|(_, v)| v))
                .map_err(|e| RequestError::Storage {
                    detail: format!("stored item does not decode: {e}"),
                })?;
            last = Some(key.clone());
            let Some(item) = state.item() else {
                continue;
            };
            scanned += 1;
            let keep = query
                .request
                .filter
                .as_ref()
                .is_none_or(|filter| filter.holds(Some(&item)));
            if keep {
                items.push(item);
            }
            if scanned >= query.limit {
                stopped_at_limit = true;
                break;
            }
        }
        if !stopped_at_limit && cutoff.is_some() {
            last = cutoff.clone();
        }
        let more = stopped_at_limit || cutoff.is_some();
        let last = match last.filter(|_| more) {
            Some(key) => Some(ItemKey::decode(&key).map_err(|e| RequestError::Storage {
                detail: format!("stored item key does not decode: {e}"),
            })?),
            None => None,
        }
        .map(|k| k.key);
        if !agree {
            self.query_repair(query, &merged);
        }
        Ok(ClientReply::Items {
            items,
            scanned,
            last,
        })
    }

    /// Read repair for a query: every answering replica whose page lacked a merged key or held
    /// other versions of it gets the merged set.
    fn query_repair(&mut self, query: &QueryOp, merged: &BTreeMap<Vec<u8>, VersionSet>) {
        if self.config.sabotaged(|s| s.no_read_repair) {
            return;
        }
        let merged_digests: Vec<u64> = merged.values().map(VersionSet::digest).collect();
        for (node, page) in &query.responses {
            let held: BTreeMap<&[u8], u64> = page
                .entries
                .iter()
                .zip(&page.digests)
                .map(|(e, digest)| (e.key.as_slice(), *digest))
                .collect();
            for ((key, set), digest) in merged.iter().zip(&merged_digests) {
                if held.get(key.as_slice()) == Some(digest) {
                    continue;
                }
                self.stats.read_repairs += 1;
                if *node == self.id {
                    let _ = self.merge_local(key, set);
                } else {
                    let item = KeyVersions {
                        key: key.clone(),
                        versions: set.clone(),
                    };
                    self.send(*node, PeerMessage::Repair { item });
                }
            }
        }
    }

    pub(super) fn on_query_deadline(&mut self, query: QueryOp) {
        self.stats.requests_failed += 1;
        let e = query.quorum_error();
        self.answer(query.reply_to, Err(e), Release::Now);
    }
}
