//! Resources and permissions (SYSTEM.md section 6): a resource is
//! `lake/<STREAM>`, `warehouse/<table>`, `products` or `admin`; a permission
//! is `read`, `write` or `execute`, and for products `view`, `add`,
//! `update` or `delete`.

use std::collections::HashSet;

use crate::error::ApiError;

pub const PRODUCTS: &str = "products";
pub const ADMIN: &str = "admin";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    Read,
    Write,
    Execute,
    View,
    Add,
    Update,
    Delete,
}

impl Permission {
    pub const ALL: [Permission; 7] = [
        Self::Read,
        Self::Write,
        Self::Execute,
        Self::View,
        Self::Add,
        Self::Update,
        Self::Delete,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Execute => "execute",
            Self::View => "view",
            Self::Add => "add",
            Self::Update => "update",
            Self::Delete => "delete",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == text)
    }
}

/// A checked resource name; its text is what `user_permissions` stores.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Resource(String);

impl Resource {
    pub fn lake(dataset: &str) -> Self {
        Self(format!("lake/{dataset}"))
    }

    pub fn warehouse(table: &str) -> Self {
        Self(format!("warehouse/{table}"))
    }

    pub fn products() -> Self {
        Self(PRODUCTS.to_string())
    }

    /// Parses a resource named by a client; `parameter` names it in the 400.
    pub fn parse(text: &str, parameter: &str) -> Result<Self, ApiError> {
        let name_ok = |name: &str, max: usize| {
            (1..=max).contains(&name.len())
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        };
        let valid = match text.split_once('/') {
            None => text == PRODUCTS || text == ADMIN,
            Some(("lake", name)) => name_ok(name, 128),
            Some(("warehouse", name)) => {
                name_ok(name, 63) && !name.bytes().any(|b| b.is_ascii_uppercase())
            }
            Some(_) => false,
        };
        if valid {
            Ok(Self(text.to_string()))
        } else {
            Err(ApiError::bad_parameter(
                parameter,
                format!(
                    "{text:?} is not a resource: use lake/<STREAM>, warehouse/<table>, products or admin"
                ),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The permissions that mean something on this resource.
    pub fn allows(&self, permission: Permission) -> bool {
        use Permission::*;
        if self.0 == PRODUCTS {
            matches!(permission, View | Add | Update | Delete)
        } else {
            matches!(permission, Read | Write | Execute)
        }
    }
}

/// What a caller holds, loaded with the token on every request (no cache, so
/// a grant or revoke counts from the next request on).
#[derive(Debug, Clone, Default)]
pub struct Grants {
    pub is_admin: bool,
    held: HashSet<(String, Permission)>,
}

impl Grants {
    pub fn new(is_admin: bool, rows: impl IntoIterator<Item = (String, String)>) -> Self {
        let held = rows
            .into_iter()
            .filter_map(|(resource, permission)| Some((resource, Permission::parse(&permission)?)))
            .collect();
        Self { is_admin, held }
    }

    /// Admins hold every permission on every resource.
    pub fn has(&self, resource: &Resource, permission: Permission) -> bool {
        self.is_admin || self.held.contains(&(resource.0.clone(), permission))
    }

    pub fn require(&self, resource: &Resource, permission: Permission) -> Result<(), ApiError> {
        if self.has(resource, permission) {
            Ok(())
        } else {
            Err(ApiError::forbidden(permission.as_str(), resource.as_str()))
        }
    }

    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.is_admin {
            Ok(())
        } else {
            Err(ApiError::forbidden("admin", ADMIN))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_are_checked() {
        for good in [
            "lake/TRANSACTIONS_FLAT",
            "lake/transaction_log",
            "warehouse/quantity_par_product",
            "products",
            "admin",
        ] {
            assert!(Resource::parse(good, "resource").is_ok(), "{good}");
        }
        for bad in [
            "lake/../etc",
            "lake/",
            "lake/a/b",
            "warehouse/Upper",
            "warehouse/x;drop",
            "other/x",
            "",
            "lake/%2e%2e",
        ] {
            let e = Resource::parse(bad, "resource").unwrap_err();
            assert_eq!(e.parameter.as_deref(), Some("resource"), "{bad}");
        }
    }

    #[test]
    fn grants_answer_per_resource_and_permission() {
        let grants = Grants::new(false, [("lake/X".to_string(), "read".to_string())]);
        assert!(grants.has(&Resource::lake("X"), Permission::Read));
        assert!(!grants.has(&Resource::lake("X"), Permission::Execute));
        assert!(!grants.has(&Resource::lake("Y"), Permission::Read));
        let e = grants
            .require(&Resource::lake("Y"), Permission::Read)
            .unwrap_err();
        assert_eq!(e.status, 403);
        assert!(e.message.contains("\"read\"") && e.message.contains("lake/Y"));
        assert!(Grants::new(true, []).has(&Resource::products(), Permission::Delete));
    }
}
