//! The handler's page groups (PCIe PRI, delivered by the IOMMU service as
//! `FaultsResponse::PageGroup`): its policy and its record of the pages it
//! made present.
//!
//! Policy: a group whose every page is a user-mode access that does not
//! ask to execute is made present and answered Success; anything else
//! (an execute or a privileged request) is answered Invalid, and nothing
//! is made present. A real handler would fault the pages in to the
//! PASID's address space; this one records them, per PASID, in a small
//! table ([`Present`]) as it would record what it mapped.

use faultline_ipc::protocol::faults::{PageGroup, ResponseCode};

/// Pages the table remembers; the oldest is forgotten for a new one.
pub const REMEMBERED: usize = 128;

/// The pages made present, per PASID (`None`: requests without one).
#[derive(Default)]
pub struct Present {
    pages: heapless::Vec<(Option<u32>, u64), REMEMBERED>,
}

/// What the policy decided for one group.
pub struct Decision {
    pub code: ResponseCode,
    pub why: &'static str,
}

impl Present {
    pub const fn new() -> Self {
        Self {
            pages: heapless::Vec::new(),
        }
    }

    /// Decides `group`'s answer; on Success its pages are recorded as
    /// present.
    pub fn decide(&mut self, group: &PageGroup) -> Decision {
        let user_non_exec = group
            .pages
            .iter()
            .all(|p| !p.access.exec && !p.access.privileged);
        if !user_non_exec {
            return Decision {
                code: ResponseCode::Invalid,
                why: "asks to execute or for privileged access: refused",
            };
        }
        for page in &group.pages {
            self.add(group.pasid, page.address);
        }
        Decision {
            code: ResponseCode::Success,
            why: "user non-exec: made present",
        }
    }

    fn add(&mut self, pasid: Option<u32>, address: u64) {
        if self.pages.contains(&(pasid, address)) {
            return;
        }
        if self.pages.is_full() {
            self.pages.remove(0);
        }
        let _ = self.pages.push((pasid, address));
    }

    /// Pages recorded as present for `pasid`.
    pub fn count(&self, pasid: Option<u32>) -> usize {
        self.pages.iter().filter(|(p, _)| *p == pasid).count()
    }
}

#[cfg(test)]
mod tests {
    use faultline_ipc::protocol::faults::{FaultToken, PageAccess, PageRequest};

    use super::*;

    fn group(pasid: Option<u32>, pages: &[(u64, PageAccess)]) -> PageGroup {
        PageGroup {
            token: FaultToken(1),
            bdf: 0x08,
            pasid,
            prg_index: 1,
            pages: pages
                .iter()
                .map(|&(address, access)| PageRequest { address, access })
                .collect(),
        }
    }

    const RW: PageAccess = PageAccess {
        read: true,
        write: true,
        exec: false,
        privileged: false,
    };

    #[test]
    fn user_non_exec_groups_are_made_present_per_pasid() {
        let mut p = Present::new();
        let d = p.decide(&group(Some(1), &[(0x1000, RW), (0x2000, RW)]));
        assert_eq!(d.code, ResponseCode::Success);
        assert_eq!(
            p.decide(&group(Some(2), &[(0x1000, RW)])).code,
            ResponseCode::Success
        );
        // Asked again: still Success, recorded once.
        assert_eq!(
            p.decide(&group(Some(1), &[(0x1000, RW)])).code,
            ResponseCode::Success
        );
        assert_eq!(
            (p.count(Some(1)), p.count(Some(2)), p.count(None)),
            (2, 1, 0)
        );
    }

    #[test]
    fn an_execute_or_privileged_page_refuses_the_whole_group() {
        let mut p = Present::new();
        let exec = PageAccess {
            exec: true,
            read: false,
            ..RW
        };
        let privileged = PageAccess {
            privileged: true,
            ..RW
        };
        for bad in [exec, privileged] {
            let d = p.decide(&group(Some(1), &[(0x1000, RW), (0x2000, bad)]));
            assert_eq!(d.code, ResponseCode::Invalid);
        }
        assert_eq!(
            p.count(Some(1)),
            0,
            "nothing of a refused group is made present"
        );
    }

    #[test]
    fn the_table_forgets_the_oldest_page_when_full() {
        let mut p = Present::new();
        for i in 0..REMEMBERED as u64 + 1 {
            p.decide(&group(None, &[(i << 12, RW)]));
        }
        assert_eq!(p.count(None), REMEMBERED);
        assert!(!p.pages.contains(&(None, 0)));
    }
}
