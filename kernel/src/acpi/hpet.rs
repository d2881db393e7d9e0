//! The HPET description table: only where the HPET's registers are, so the
//! kernel can keep every grant away from them.

/// The register block's physical address from an HPET table (the base
/// address Generic Address Structure at offset 40, its address at 44), if
/// the table is long enough and the block is in memory space.
pub fn hpet_base(table: &[u8]) -> Option<u64> {
    let gas = table.get(40..52)?;
    let address_space = gas[0];
    let address = u64::from_le_bytes(gas[4..12].try_into().ok()?);
    (address_space == 0 && address != 0).then_some(address)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qemu_q35_hpet_is_at_fed00000() {
        let fixture = include_str!("../../tests/fixtures/acpi/default.acpi");
        let line = fixture
            .lines()
            .find(|l| l.starts_with("ACPI-DUMP HPET "))
            .expect("the q35 fixture has an HPET table");
        let hex = line.split_whitespace().nth(3).expect("bytes");
        let bytes: std::vec::Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
            .collect();
        assert_eq!(hpet_base(&bytes), Some(0xfed0_0000));
    }

    #[test]
    fn short_tables_and_io_space_have_no_base() {
        let mut t = [0u8; 52];
        assert_eq!(hpet_base(&t[..51]), None);
        assert_eq!(hpet_base(&t), None, "address 0");
        t[44..52].copy_from_slice(&0xfed0_0000u64.to_le_bytes());
        assert_eq!(hpet_base(&t), Some(0xfed0_0000));
        t[40] = 1; // system I/O space
        assert_eq!(hpet_base(&t), None);
    }
}
