//! Page groups: collecting a PRI device's page requests until the one
//! marked last in its group, so the group reaches its handler whole and is
//! answered once.
//!
//! A page group is every request with the same requester, PASID and page
//! request group index up to the one with LPIG set; only that last request
//! obliges software to respond, and the response covers the group. The
//! service hands [`Assembler::push`] each well-formed request that is not
//! a stop marker (validation and stop markers are the caller's, before
//! this), and gets the group back when its last request arrives.
//!
//! When the page request queue overflowed, a last request may have been
//! lost, so partial groups are discarded ([`Assembler::discard_partial`]):
//! the device asks again. A device or PASID going away forgets its
//! partials ([`Assembler::forget`]).

use faultline_ipc::protocol::faults::{MAX_GROUP_PAGES, PageAccess, PageRequest};
use faultline_vtd::prq::{self, GroupId};
use heapless::Vec;

use crate::types::{Group, NewFault};

/// Partial groups kept at once; a request of one more group is dropped
/// (the group's response, when its last request comes, still goes out).
pub const MAX_PARTIAL_GROUPS: usize = 32;

struct Partial {
    id: GroupId,
    /// The first requests of the group; a group with more is too large
    /// (its later requests are not kept).
    pages: Vec<PageRequest, MAX_GROUP_PAGES>,
    too_large: bool,
}

/// What became of one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Collected {
    /// Kept until its group's last request.
    Partial,
    /// No room for another partial group: the request is dropped.
    Dropped,
    /// The group is complete: deliver it.
    Complete(NewFault),
    /// The group is complete but has more than [`MAX_GROUP_PAGES`]
    /// requests (the fault carries the first ones): answer it Failure.
    TooLarge(NewFault),
}

/// The partial groups of one remapping unit.
pub struct Assembler {
    partial: Vec<Partial, MAX_PARTIAL_GROUPS>,
    dropped: u64,
}

impl Default for Assembler {
    fn default() -> Self {
        Self::new()
    }
}

/// A request's page as a handler sees it.
pub fn page(r: &prq::PageRequest) -> PageRequest {
    PageRequest {
        address: r.address,
        access: PageAccess {
            read: r.read,
            write: r.write,
            exec: r.exec,
            privileged: r.privileged,
        },
    }
}

impl Assembler {
    pub const fn new() -> Self {
        Self {
            partial: Vec::new(),
            dropped: 0,
        }
    }

    /// Takes one well-formed request (not a stop marker).
    pub fn push(&mut self, r: &prq::PageRequest) -> Collected {
        let id = r.group();
        let at = self.partial.iter().position(|p| p.id == id);
        if !r.last {
            let i = match at {
                Some(i) => i,
                None => {
                    let fresh = Partial {
                        id,
                        pages: Vec::new(),
                        too_large: false,
                    };
                    if self.partial.push(fresh).is_err() {
                        self.dropped += 1;
                        return Collected::Dropped;
                    }
                    self.partial.len() - 1
                }
            };
            let p = &mut self.partial[i];
            if p.pages.push(page(r)).is_err() {
                p.too_large = true;
            }
            return Collected::Partial;
        }
        let (too_large, mut pages) = match at {
            Some(i) => {
                let p = self.partial.swap_remove(i);
                (p.too_large, p.pages)
            }
            None => (false, Vec::new()),
        };
        let whole = pages.push(page(r)).is_ok() && !too_large;
        // Fits: `pages` holds at most MAX_GROUP_PAGES.
        let group = Group::new(id.prg_index, &pages).unwrap_or_else(|| unreachable!());
        let fault = group.fault(id.rid, id.pasid);
        if whole {
            Collected::Complete(fault)
        } else {
            Collected::TooLarge(fault)
        }
    }

    /// The queue overflowed: every partial group is discarded (its last
    /// request may be among the lost). Returns how many.
    pub fn discard_partial(&mut self) -> usize {
        let n = self.partial.len();
        self.partial.clear();
        n
    }

    /// Forgets the partial groups of `rid` (of its PASID `pasid` only, if
    /// given), which is going away. Returns how many.
    pub fn forget(&mut self, rid: u16, pasid: Option<u32>) -> usize {
        let before = self.partial.len();
        self.partial
            .retain(|p| !(p.id.rid == rid && pasid.is_none_or(|x| p.id.pasid == Some(x))));
        before - self.partial.len()
    }

    /// Drops the partial requests of group `id` (its last request was
    /// answered without reaching a handler).
    pub fn abandon(&mut self, id: GroupId) {
        self.partial.retain(|p| p.id != id);
    }

    /// Partial groups held now.
    pub fn partial_groups(&self) -> usize {
        self.partial.len()
    }

    /// Requests dropped for want of room.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}
