//! A stable checksum of a serialisable value (FNV-1a, 64 bit, over its JSON), for the
//! pod-template annotation: it lets a reader compare desired and live templates without a
//! deep diff of API-server defaults. Not cryptographic; it only has to change when the
//! input does, identically across builds and Rust versions (std's hasher is neither
//! promised to be).

use serde::Serialize;

const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0000_0100_0000_01b3;

/// Hex FNV-1a of the value's JSON. k8s-openapi types serialise maps in key order, so
/// equal values give equal bytes.
pub(crate) fn of(value: &impl Serialize) -> String {
    // Serialising these types cannot fail: every map key is a string.
    format!(
        "{:016x}",
        fnv1a(&serde_json::to_vec(value).unwrap_or_default())
    )
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(OFFSET, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(PRIME)
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn is_fnv1a_64_of_the_json() {
        // Published FNV-1a 64 test vectors.
        assert_eq!(super::fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(super::fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(super::of(&"a"), format!("{:016x}", super::fnv1a(b"\"a\"")));
    }
}
