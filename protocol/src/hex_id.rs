//! Fixed-size byte identifiers (report ids, contact ids, message ids) that
//! are shown, parsed and serialized as lowercase hex.

/// Implement `to_hex`, `Display`, `Debug`, `FromStr` (with the given error
/// type, defined here), `Serialize` and `Deserialize` for a newtype over
/// `[u8; N]`.
macro_rules! hex_id {
    ($name:ident, $error:ident, $what:literal) => {
        impl $name {
            /// Lowercase hex.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({})", stringify!($name), &self.to_hex()[..16])
            }
        }

        #[doc = concat!("A string that is not a ", $what, " (hexadecimal digits of the right length).")]
        #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
        #[error("{0:?} is not a {what}: expected {len} hexadecimal digits", what = $what, len = 2 * std::mem::size_of::<$name>())]
        pub struct $error(pub String);

        impl std::str::FromStr for $name {
            type Err = $error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let mut a = [0u8; std::mem::size_of::<$name>()];
                hex::decode_to_slice(s, &mut a).map_err(|_| $error(s.chars().take(80).collect()))?;
                Ok($name(a))
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_hex())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <String as serde::Deserialize>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use hex_id;
