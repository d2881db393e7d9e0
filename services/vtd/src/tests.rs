//! Decoder tests: QEMU 10.0.2's live CAP/ECAP values (`reference/qemu-vtd.md`
//! §1) decode to exactly what QEMU documents, and for arbitrary values the
//! decoders never panic and lose no defined bit.

use proptest::prelude::*;

use crate::regs::{self, FaultStatus, GlobalCommand, GlobalStatus, Width};
use crate::*;

const QEMU_CAP: u64 = 0x00d2_008c_222f_0606;
const QEMU_ECAP: u64 = 0x0000_0000_00f0_0f4a;
const QEMU_ECAP_SCALABLE: u64 = 0x4800_80f0_0f4a;
const QEMU_ECAP_SCALABLE_PASID: u64 = 0x4900_80f0_0f4a;
const QEMU_CAP_FLTS: u64 = 0x01d2_008c_222f_0606;
const QEMU_ECAP_FLTS: u64 = 0x8800_00f0_0f4a;
const QEMU_CAP_CACHING: u64 = 0x00d2_008c_222f_0686;
const QEMU_ECAP_CACHING: u64 = 0xf46;

/// Rebuilds a CAP value from the decoded fields alone.
fn encode_cap(c: Capability) -> u64 {
    let flags = [
        (3, c.advanced_fault_logging()),
        (4, c.required_write_buffer_flush()),
        (5, c.protected_low_memory_region()),
        (6, c.protected_high_memory_region()),
        (7, c.caching_mode()),
        (22, c.zero_length_read()),
        (39, c.page_selective_invalidation()),
        (54, c.write_draining()),
        (55, c.read_draining()),
        (56, c.first_level_1g_pages()),
        (59, c.posted_interrupts()),
        (60, c.first_level_5_level_paging()),
        (62, c.enhanced_set_irtp()),
        (63, c.enhanced_set_rtp()),
    ];
    let mut raw = flags
        .iter()
        .fold(0, |acc, &(n, set)| acc | (u64::from(set) << n));
    raw |= u64::from((c.domain_id_bits() - 4) / 2);
    raw |= u64::from(c.supported_address_widths().bits()) << 8;
    raw |= u64::from(c.max_guest_address_width() - 1) << 16;
    raw |= (c.fault_recording_offset() as u64 / 16) << 24;
    raw |= u64::from(c.second_level_large_pages().bits()) << 34;
    raw |= u64::from(c.fault_recording_count() - 1) << 40;
    raw |= u64::from(c.max_address_mask()) << 48;
    raw
}

/// Rebuilds an ECAP value from the decoded fields alone.
fn encode_ecap(e: ExtendedCapability) -> u64 {
    let flags = [
        (0, e.coherency()),
        (1, e.queued_invalidation()),
        (2, e.device_tlb()),
        (3, e.interrupt_remapping()),
        (4, e.extended_interrupt_mode()),
        (6, e.pass_through()),
        (7, e.snoop_control()),
        (25, e.memory_type()),
        (26, e.nested_translation()),
        (29, e.page_requests()),
        (30, e.execute_requests()),
        (31, e.supervisor_requests()),
        (33, e.no_write_flag()),
        (34, e.extended_accessed_flag()),
        (40, e.pasid()),
        (41, e.device_tlb_invalidation_throttle()),
        (42, e.page_request_drain()),
        (43, e.scalable_mode()),
        (44, e.virtual_command()),
        (45, e.second_level_accessed_dirty()),
        (46, e.second_level_translation()),
        (47, e.first_level_translation()),
        (48, e.scalable_page_walk_coherency()),
        (49, e.rid_pasid()),
        (50, e.abort_dma_mode()),
        (51, e.rid_privilege()),
    ];
    let mut raw = flags
        .iter()
        .fold(0, |acc, &(n, set)| acc | (u64::from(set) << n));
    raw |= (e.iotlb_register_offset() as u64 / 16) << 8;
    raw |= u64::from(e.max_handle_mask()) << 20;
    raw |= u64::from(e.pasid_bits() - 1) << 35;
    raw
}

#[test]
fn qemu_default_cap_decodes() {
    let cap = Capability(QEMU_CAP);
    assert_eq!(cap.domain_id_bits(), 16);
    assert_eq!(cap.domain_count(), 65536);
    assert_eq!(
        cap.supported_address_widths(),
        AddressWidths::BITS_39 | AddressWidths::BITS_48
    );
    let widths: Vec<_> = cap.supported_address_widths().widths().collect();
    assert_eq!(widths, [AddressWidth::Bits39, AddressWidth::Bits48]);
    assert_eq!(cap.max_guest_address_width(), 48);
    assert_eq!(cap.fault_recording_offset(), 0x220);
    assert_eq!(cap.fault_recording_count(), 1);
    assert_eq!(
        cap.second_level_large_pages(),
        LargePageSizes::SIZE_2M | LargePageSizes::SIZE_1G
    );
    assert!(cap.page_selective_invalidation());
    assert_eq!(cap.max_address_mask(), 18);
    assert!(cap.write_draining() && cap.read_draining());
    assert!(!cap.caching_mode());
    assert!(!cap.required_write_buffer_flush());
    assert!(!cap.protected_low_memory_region() && !cap.protected_high_memory_region());
    assert!(!cap.advanced_fault_logging() && !cap.zero_length_read());
    assert!(!cap.first_level_1g_pages() && !cap.posted_interrupts());
    assert!(!cap.enhanced_set_rtp() && !cap.enhanced_set_irtp());
}

#[test]
fn qemu_default_ecap_decodes() {
    let ecap = ExtendedCapability(QEMU_ECAP);
    assert!(ecap.queued_invalidation() && ecap.interrupt_remapping() && ecap.pass_through());
    assert_eq!(ecap.iotlb_register_offset(), 0xf0);
    assert_eq!(ecap.max_handle_mask(), 0xf);
    assert!(!ecap.coherency() && !ecap.device_tlb() && !ecap.extended_interrupt_mode());
    assert!(!ecap.snoop_control() && !ecap.page_requests() && !ecap.pasid());
    assert!(!ecap.scalable_mode() && !ecap.first_level_translation());
    assert!(!ecap.second_level_translation() && !ecap.supervisor_requests());
    assert!(ecap.legacy_mode_supported() && !ecap.scalable_mode_supported());
    assert!(ecap.supports(TranslationMode::Legacy) && !ecap.supports(TranslationMode::Scalable));
}

#[test]
fn qemu_scalable_ecaps_decode() {
    let sm = ExtendedCapability(QEMU_ECAP_SCALABLE);
    assert!(sm.supervisor_requests() && sm.scalable_mode() && sm.second_level_translation());
    assert!(!sm.first_level_translation() && !sm.pasid());
    assert!(sm.scalable_second_level_supported() && !sm.scalable_first_level_supported());
    assert!(sm.supports(TranslationMode::Scalable) && sm.supports(TranslationMode::Legacy));

    let pasid = ExtendedCapability(QEMU_ECAP_SCALABLE_PASID);
    assert_eq!(pasid.0 ^ sm.0, 1 << 40);
    assert!(pasid.pasid());
    // QEMU 10.0 leaves PSS at 0 even with x-pasid-mode=on.
    assert_eq!(pasid.pasid_bits(), 1);
}

#[test]
fn qemu_first_level_variant_decodes() {
    let cap = Capability(QEMU_CAP_FLTS);
    assert!(cap.first_level_1g_pages());
    assert_eq!(cap.0 ^ QEMU_CAP, 1 << 56);
    let ecap = ExtendedCapability(QEMU_ECAP_FLTS);
    assert!(ecap.scalable_mode() && ecap.first_level_translation());
    assert!(!ecap.second_level_translation() && !ecap.supervisor_requests());
    assert!(ecap.scalable_first_level_supported() && !ecap.scalable_second_level_supported());
}

#[test]
fn qemu_caching_mode_variant_decodes() {
    let cap = Capability(QEMU_CAP_CACHING);
    assert!(cap.caching_mode());
    assert_eq!(cap.0 ^ QEMU_CAP, 1 << 7);
    let ecap = ExtendedCapability(QEMU_ECAP_CACHING);
    assert!(ecap.device_tlb() && ecap.queued_invalidation() && ecap.pass_through());
    assert!(!ecap.interrupt_remapping());
    assert_eq!(ecap.max_handle_mask(), 0);
    assert_eq!(ecap.iotlb_register_offset(), 0xf0);
}

#[test]
fn summaries_name_every_boot_report_field() {
    let cap = Capability(QEMU_CAP).to_string();
    assert!(cap.starts_with(
        "SAGAW=39,48-bit MGAW=48 ND=16-bit-DID FRO=0x220 NFR=1 SLLPS=2M,1G MAMV=18 PSI=1 CM=0 "
    ));
    assert!(cap.ends_with("ESIRTPS=0"), "{cap}");
    let ecap = ExtendedCapability(QEMU_ECAP).to_string();
    assert!(ecap.starts_with(
        "QI=1 IR=1 PT=1 SC=0 PRS=0 PASID=0 SMTS=0 FLTS=0 SLTS=0 IRO=0xf0 MHMV=15 PSS=1-bit C=0 DT=0 "
    ));
    let sm = ExtendedCapability(QEMU_ECAP_FLTS).to_string();
    assert!(sm.contains(" SMTS=1 FLTS=1 SLTS=0 "), "{sm}");
    assert!(!ecap.contains('\n') && !cap.contains('\n'));
}

#[test]
fn summary_marks_empty_and_reserved_fields() {
    let cap = Capability(0x11 << 8 | 0xc << 34).to_string();
    assert!(cap.starts_with("SAGAW=none+reserved:0x11 "), "{cap}");
    assert!(cap.contains(" SLLPS=none+reserved:0xc "), "{cap}");
}

#[test]
fn version_decodes_qemu_value() {
    let version = Version::from_register(0x10);
    assert_eq!(version, Version { major: 1, minor: 0 });
    assert_eq!(version.to_string(), "1.0");
    assert_eq!(version.to_register(), 0x10);
}

#[test]
fn register_map_matches_qemu_offsets_and_does_not_overlap() {
    assert_eq!((regs::FSTS.offset, regs::FSTS.width), (0x34, Width::W32));
    assert_eq!(
        (regs::RTADDR.offset, regs::RTADDR.width),
        (0x20, Width::W64)
    );
    assert_eq!(
        (regs::PEUADDR.offset, regs::PEUADDR.width),
        (0xec, Width::W32)
    );
    for pair in regs::ALL.windows(2) {
        assert!(pair[0].end() <= pair[1].offset, "{pair:?}");
    }
    for reg in regs::ALL {
        assert_eq!(reg.offset % reg.width.bytes(), 0, "{reg:?} misaligned");
        assert!(reg.end() <= 0x230, "{reg:?} beyond QEMU's DMAR_REG_SIZE");
    }
    let [iva, iotlb] = regs::iotlb_registers(ExtendedCapability(QEMU_ECAP).iotlb_register_offset());
    assert_eq!((iva.offset, iotlb.offset), (0xf0, 0xf8));
    let frcd = regs::fault_record(Capability(QEMU_CAP).fault_recording_offset(), 0);
    assert_eq!((frcd.low.offset, frcd.high.offset), (0x220, 0x228));
    assert_eq!((frcd.status.offset, frcd.status.width), (0x22c, Width::W32));
}

#[test]
fn global_status_keeps_enables_and_drops_one_shots() {
    let status = GlobalStatus::TES | GlobalStatus::RTPS | GlobalStatus::QIES | GlobalStatus::IRTPS;
    assert_eq!(
        status.persistent_command(),
        GlobalCommand::TE | GlobalCommand::QIE
    );
    // The VT-d spec's recipe: Status & 0x96FFFFFF.
    assert_eq!(GlobalStatus::all().persistent_command().bits(), 0x9680_0000);
    assert_eq!(GlobalCommand::SRTP.status(), GlobalStatus::RTPS);
}

#[test]
fn fault_status_exposes_fri_and_rw1c_bits() {
    let fsts = FaultStatus::from_bits_retain(0x0302);
    assert!(fsts.contains(FaultStatus::PPF));
    assert_eq!(fsts.fault_record_index(), 3);
    assert!(!FaultStatus::WRITE_ONE_TO_CLEAR.contains(FaultStatus::PPF));
    assert_eq!(FaultStatus::WRITE_ONE_TO_CLEAR.bits(), 0x7d);
}

#[test]
fn qemu_values_reencode() {
    for cap in [QEMU_CAP, QEMU_CAP_FLTS, QEMU_CAP_CACHING] {
        assert_eq!(encode_cap(Capability(cap)), cap);
    }
    for ecap in [
        QEMU_ECAP,
        QEMU_ECAP_SCALABLE,
        QEMU_ECAP_SCALABLE_PASID,
        QEMU_ECAP_FLTS,
    ] {
        assert_eq!(encode_ecap(ExtendedCapability(ecap)), ecap);
    }
}

proptest! {
    #[test]
    fn any_cap_decodes_displays_and_reencodes(raw in any::<u64>()) {
        let cap = Capability(raw);
        let summary = cap.to_string();
        prop_assert!(summary.starts_with("SAGAW="));
        prop_assert_eq!(encode_cap(cap), raw & Capability::DEFINED_BITS);
    }

    #[test]
    fn any_ecap_decodes_displays_and_reencodes(raw in any::<u64>()) {
        let ecap = ExtendedCapability(raw);
        let summary = ecap.to_string();
        prop_assert!(summary.starts_with("QI="));
        prop_assert_eq!(encode_ecap(ecap), raw & ExtendedCapability::DEFINED_BITS);
    }

    #[test]
    fn any_version_reencodes(raw in any::<u32>()) {
        prop_assert_eq!(Version::from_register(raw).to_register(), raw & 0xff);
    }
}

mod prq {
    use crate::prq::*;

    fn request() -> PageRequest {
        PageRequest {
            rid: 0x0018,
            pasid: Some(0x12345),
            exec: false,
            privileged: false,
            read: true,
            write: true,
            last: true,
            prg_index: 0x1a5,
            address: 0x7fff_dead_b000,
        }
    }

    #[test]
    fn page_request_fields_sit_where_linux_decodes_them() {
        let [qw0, qw1, qw2, qw3] = request().encode();
        assert_eq!(qw0 & 0xff, 1, "type");
        assert_eq!(qw0 >> 8 & 1, 1, "PASID present");
        assert_eq!(qw0 >> 16 & 0xffff, 0x18, "RID 31:16");
        assert_eq!(qw0 >> 32 & 0xf_ffff, 0x12345, "PASID 51:32");
        assert_eq!(qw1 & 0b111, 0b111, "read, write, LPIG");
        assert_eq!(qw1 >> 3 & 0x1ff, 0x1a5, "PRG index 11:3");
        assert_eq!(qw1 & !0xfff, 0x7fff_dead_b000, "address 63:12");
        assert_eq!((qw2, qw3), (0, 0));
        let exec = PageRequest {
            exec: true,
            privileged: true,
            ..request()
        };
        assert_eq!(
            exec.encode()[0] >> 52 & 0b11,
            0b11,
            "exec 52, privileged 53"
        );
    }

    #[test]
    fn page_request_round_trips_and_rejects_other_types() {
        let r = request();
        let [qw0, qw1, ..] = r.encode();
        assert_eq!(PageRequest::decode(qw0, qw1), Some(r));
        let none = PageRequest { pasid: None, ..r };
        let [qw0, qw1, ..] = none.encode();
        assert_eq!(qw0 >> 8 & 1, 0);
        assert_eq!(PageRequest::decode(qw0, qw1), Some(none));
        assert_eq!(PageRequest::decode(qw0 & !0xff | 2, qw1), None);
    }

    #[test]
    fn stop_markers_are_last_without_read_or_write() {
        let r = request();
        assert!(!r.is_stop_marker());
        let stop = PageRequest {
            read: false,
            write: false,
            ..r
        };
        assert!(stop.is_stop_marker());
        assert!(
            !PageRequest {
                last: false,
                ..stop
            }
            .is_stop_marker()
        );
        assert!(!PageRequest { read: true, ..stop }.is_stop_marker());
        assert!(
            !PageRequest {
                write: true,
                ..stop
            }
            .is_stop_marker()
        );
    }

    #[test]
    fn page_group_response_layout_and_round_trip() {
        let resp = PageGroupResponse {
            group: request().group(),
            code: 0xf,
        };
        let (low, high) = resp.encode();
        assert_eq!(low & 0xf, 9, "type");
        assert_eq!(low >> 4 & 1, 1, "PASID present");
        assert_eq!(low >> 12 & 0xf, 0xf, "code 15:12");
        assert_eq!(low >> 16 & 0xffff, 0x18, "RID 31:16");
        assert_eq!(low >> 32 & 0xf_ffff, 0x12345, "PASID 51:32");
        assert_eq!(high, 0x1a5 << 3, "PRG index 11:3, no LPIG");
        assert_eq!(PageGroupResponse::decode(low, high), Ok(resp));
        let no_pasid = PageGroupResponse {
            group: GroupId {
                pasid: None,
                ..resp.group
            },
            code: 1,
        };
        let (low, high) = no_pasid.encode();
        assert_eq!(low >> 4 & 1, 0);
        assert_eq!(PageGroupResponse::decode(low, high), Ok(no_pasid));
    }

    #[test]
    fn page_group_response_decode_refuses_reserved_bits() {
        let (low, high) = PageGroupResponse {
            group: request().group(),
            code: 0,
        }
        .encode();
        assert!(PageGroupResponse::decode(low | 1 << 5, high).is_err());
        assert!(PageGroupResponse::decode(low | 1 << 52, high).is_err());
        assert!(
            PageGroupResponse::decode(low, high | 1 << 2).is_err(),
            "LPIG"
        );
        assert!(PageGroupResponse::decode(low, high | 1 << 12).is_err());
        assert!(PageGroupResponse::decode(low & !0xf | 5, high).is_err());
        assert!(PageGroupResponse::decode(low | 1 << 9, high).is_err());
    }

    #[test]
    fn queue_address_and_canonical_addresses() {
        assert_eq!(queue_address(0x1234_5000, 2), 0x1234_5002);
        assert_eq!(queue_address(0x1234_5fff, 9), 0x1234_5001);
        assert_eq!(queue_entries(0), 128);
        assert_eq!(queue_entries(4), 2048);
        assert!(is_canonical(0x0000_7fff_ffff_f000));
        assert!(is_canonical(0xffff_8000_0000_0000));
        assert!(!is_canonical(0x0000_8000_0000_0000));
        assert!(!is_canonical(0xfff7_8000_0000_0000));
    }
}
