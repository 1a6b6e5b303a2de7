//! The `registry!` macro: open IANA registries as newtypes with named constants.

/// Declares an open registry: a `Copy` newtype over an integer, one associated constant per
/// assigned value, `name()` giving the RFC mnemonic, and a `Debug` that prints the name or, for
/// unassigned values, the number in hex. Unknown values are valid data: they round-trip.
macro_rules! registry {
    (
        $(#[$meta:meta])*
        pub struct $name:ident($int:ty) {
            $( $(#[$vmeta:meta])* $variant:ident = $value:expr ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub $int);

        #[allow(missing_docs, reason = "each constant is the registry's own mnemonic")]
        impl $name {
            $( $(#[$vmeta])* pub const $variant: Self = Self($value); )*

            /// Every assigned value, in registry order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),*];

            /// The registry mnemonic, or `None` for an unassigned value.
            pub const fn name(self) -> Option<&'static str> {
                match self.0 {
                    $( $value => Some(stringify!($variant)), )*
                    _ => None,
                }
            }
        }

        impl core::fmt::Debug for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                match self.name() {
                    Some(name) => f.write_str(name),
                    None => write!(f, "{}({:#x})", stringify!($name), self.0),
                }
            }
        }

        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                core::fmt::Debug::fmt(self, f)
            }
        }

        impl From<$int> for $name {
            fn from(v: $int) -> Self {
                Self(v)
            }
        }

        impl From<$name> for $int {
            fn from(v: $name) -> Self {
                v.0
            }
        }
    };
}

pub(crate) use registry;
