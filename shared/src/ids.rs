//! Random identifiers: a short type prefix plus 16 base-36 characters (about 82 bits).

use rand::Rng;

const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// `n` random characters from `alphabet`, from the OS-seeded thread RNG.
pub fn random_string(alphabet: &[u8], n: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..n)
        .map(|_| alphabet[rng.gen_range(0..alphabet.len())] as char)
        .collect()
}

/// A new id such as `con_k3x9...`; `prefix` names the item type.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", random_string(ALPHABET, 16))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_prefix_and_are_distinct() {
        let a = new_id("con");
        let b = new_id("con");
        assert!(a.starts_with("con_") && a.len() == 20);
        assert_ne!(a, b);
    }
}
