//! Read repair (Dynamo §4.5): after a get, every replica that answered with a stale or missing
//! set receives the merged one. Replicas that did not answer are left to hinted handoff and
//! anti-entropy. Repairs are fire-and-forget (`PeerMessage::Repair`, no answer): a lost one
//! costs nothing but a later repair.

use super::Node;
use super::quorum_read::GetOp;
use crate::protocol::{KeyVersions, PeerMessage};
use crate::store::Store;

impl<S: Store> Node<S> {
    /// Dynamo §4.5 read repair: every target that answered with a stale or missing set gets
    /// the merged one. Targets that did not answer are left to hints and anti-entropy.
    pub(super) fn read_repair(&mut self, get: &GetOp) {
        if self.config.sabotaged(|s| s.no_read_repair) {
            return;
        }
        let merged = get.merged();
        if merged.is_empty() {
            return;
        }
        let digest = merged.digest();
        for (node, set) in &get.responses {
            let stale = set.as_ref().is_none_or(|s| s.digest() != digest);
            if !stale {
                continue;
            }
            self.stats.read_repairs += 1;
            if *node == self.id {
                // A failure here is repaired later by anti-entropy.
                let _ = self.merge_local(&get.key, &merged);
            } else {
                let item = KeyVersions {
                    key: get.key.clone(),
                    versions: merged.clone(),
                };
                self.send(*node, PeerMessage::Repair { item });
            }
        }
    }
}
