//! The simulated provider's data: entities, id formats and the lazy record generator. A record
//! is a pure function of (seed, entity, index), so a million of them cost nothing until served.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::emit::{bool_field, num_field, push_padded, push_u64, str_field, via_emit, Emit};
use crate::hash::{hash3, mix};
use crate::time::{Day, Rfc3339, EPOCH};

/// The collections the sandbox serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Entity {
    Customers,
    Products,
    Invoices,
    Payments,
}

/// Returned when a string names no [`Entity`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown entity {0:?} (expected customers, products, invoices or payments)")]
pub struct UnknownEntity(pub String);

impl Entity {
    /// Every entity, in the order they are usually synced (referenced before referencing).
    pub const ALL: [Entity; 4] = [
        Entity::Customers,
        Entity::Products,
        Entity::Invoices,
        Entity::Payments,
    ];

    /// The collection name used in URLs and JSON: `customers`, `products`, ...
    pub const fn as_str(self) -> &'static str {
        match self {
            Entity::Customers => "customers",
            Entity::Products => "products",
            Entity::Invoices => "invoices",
            Entity::Payments => "payments",
        }
    }

    /// The prefix of this entity's ids, e.g. `cus_`.
    pub const fn id_prefix(self) -> &'static str {
        match self {
            Entity::Customers => "cus_",
            Entity::Products => "prod_",
            Entity::Invoices => "in_",
            Entity::Payments => "pay_",
        }
    }

    /// The id of the `n`th record (1-based), e.g. `Entity::Customers.id(1) == "cus_00000001"`.
    pub fn id(self, n: usize) -> String {
        Id(self, n as u64).to_string()
    }

    /// The 1-based number in a canonical id of this entity (`cus_00000007` → 7). Only the
    /// canonical spelling is accepted so that one record never has two ids.
    pub fn parse_id(self, id: &str) -> Option<usize> {
        let digits = id.strip_prefix(self.id_prefix())?;
        let canonical_width = digits.len() == 8 || (digits.len() > 8 && !digits.starts_with('0'));
        if !canonical_width || digits.len() > 18 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok()
    }

    pub(crate) const fn object(self) -> &'static str {
        match self {
            Entity::Customers => "customer",
            Entity::Products => "product",
            Entity::Invoices => "invoice",
            Entity::Payments => "payment",
        }
    }

    pub(crate) const fn slot(self) -> usize {
        match self {
            Entity::Customers => 0,
            Entity::Products => 1,
            Entity::Invoices => 2,
            Entity::Payments => 3,
        }
    }

    /// Upper bound of one generated record's JSON plus its separating comma, so a page buffer
    /// sized from it never reallocates (patched or faulty records may exceed it; that only
    /// costs a reallocation).
    pub(crate) const fn approx_json_len(self) -> usize {
        match self {
            Entity::Customers => 480,
            Entity::Products => 200,
            Entity::Invoices => 220,
            Entity::Payments => 180,
        }
    }
}

impl fmt::Display for Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Entity {
    type Err = UnknownEntity;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Entity::ALL
            .into_iter()
            .find(|e| e.as_str() == s)
            .ok_or_else(|| UnknownEntity(s.to_owned()))
    }
}

/// A record id rendered on demand, so the fast serving path never allocates for it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Id(pub(crate) Entity, pub(crate) u64);

impl Emit for Id {
    fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.0.id_prefix().as_bytes());
        push_padded(out, self.1, 8);
    }
}

via_emit!(Id, Email, Prefixed, Phone, Suite, Line1, Postal, Pair);

const FIRST: [&str; 32] = [
    "Olivia",
    "Liam",
    "Emma",
    "Noah",
    "Ava",
    "Elijah",
    "Sophia",
    "James",
    "Isabella",
    "William",
    "Mia",
    "Benjamin",
    "Charlotte",
    "Lucas",
    "Amelia",
    "Henry",
    "Harper",
    "Theodore",
    "Evelyn",
    "Jack",
    "Abigail",
    "Levi",
    "Emily",
    "Alexander",
    "Ella",
    "Mateo",
    "Avery",
    "Daniel",
    "Scarlett",
    "Michael",
    "Grace",
    "Owen",
];
const LAST: [&str; 32] = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
];
const STREETS: [&str; 16] = [
    "Maple Avenue",
    "Oak Street",
    "Pine Road",
    "Cedar Lane",
    "Elm Street",
    "Washington Boulevard",
    "Lake Drive",
    "Hillcrest Way",
    "Sunset Boulevard",
    "Park Place",
    "River Road",
    "Main Street",
    "Highland Avenue",
    "Church Street",
    "Mill Lane",
    "Forest Court",
];
/// (city, state, first two digits of its postal codes)
const CITIES: [(&str, &str, u32); 16] = [
    ("Springfield", "IL", 62),
    ("Portland", "OR", 97),
    ("Austin", "TX", 78),
    ("Denver", "CO", 80),
    ("Madison", "WI", 53),
    ("Raleigh", "NC", 27),
    ("Boise", "ID", 83),
    ("Columbus", "OH", 43),
    ("Richmond", "VA", 23),
    ("Tucson", "AZ", 85),
    ("Omaha", "NE", 68),
    ("Albany", "NY", 12),
    ("Savannah", "GA", 31),
    ("Burlington", "VT", 5),
    ("Fresno", "CA", 93),
    ("Tacoma", "WA", 98),
];
const SEGMENTS: [&str; 4] = ["smb", "mid_market", "enterprise", "self_serve"];
const PLANS: [&str; 4] = ["starter", "growth", "scale", "enterprise"];
const SOURCES: [&str; 5] = ["web", "referral", "sales", "partner", "import"];
const ADJECTIVES: [&str; 16] = [
    "Ergonomic",
    "Rustic",
    "Sleek",
    "Durable",
    "Compact",
    "Premium",
    "Classic",
    "Portable",
    "Smart",
    "Handcrafted",
    "Modular",
    "Wireless",
    "Recycled",
    "Heavy-Duty",
    "Deluxe",
    "Mini",
];
const NOUNS: [&str; 16] = [
    "Desk Lamp",
    "Notebook",
    "Backpack",
    "Coffee Mug",
    "Keyboard",
    "Water Bottle",
    "Chair",
    "Headphones",
    "Monitor Stand",
    "Planner",
    "Tote Bag",
    "Speaker",
    "Mouse Pad",
    "Charger",
    "Bookshelf",
    "Thermos",
];
const STATUSES: [&str; 8] = [
    "draft", "open", "open", "paid", "paid", "paid", "paid", "void",
];
const METHODS: [&str; 4] = ["card", "card", "ach", "cash"];

/// A lowercase `first.last<n>@example.com`; the number keeps emails unique across records.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Email(&'static str, &'static str, u64);

impl Emit for Email {
    fn emit(&self, out: &mut Vec<u8>) {
        out.extend(self.0.bytes().map(|b| b.to_ascii_lowercase()));
        out.push(b'.');
        out.extend(self.1.bytes().map(|b| b.to_ascii_lowercase()));
        push_u64(out, self.2);
        out.extend_from_slice(b"@example.com");
    }
}

/// `<prefix><n:08>`, for SKUs and invoice numbers.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Prefixed(&'static str, u64);

impl Emit for Prefixed {
    fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.0.as_bytes());
        push_padded(out, self.1, 8);
    }
}

/// Two words joined by a space (person and product names).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pair(&'static str, &'static str);

impl Emit for Pair {
    fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.0.as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.1.as_bytes());
    }
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Phone(u64);

impl Emit for Phone {
    fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"+1-555-");
        push_padded(out, self.0 / 10_000 % 1_000, 3);
        out.push(b'-');
        push_padded(out, self.0 % 10_000, 4);
    }
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Suite(u64);

impl Emit for Suite {
    fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"Suite ");
        push_u64(out, self.0);
    }
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Line1(u64, &'static str);

impl Emit for Line1 {
    fn emit(&self, out: &mut Vec<u8>) {
        push_u64(out, self.0);
        out.push(b' ');
        out.extend_from_slice(self.1.as_bytes());
    }
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Postal(u32, u64);

impl Emit for Postal {
    fn emit(&self, out: &mut Vec<u8>) {
        push_padded(out, u64::from(self.0), 2);
        push_padded(out, self.1 % 1_000, 3);
    }
}

#[derive(Clone, Copy, Debug, Serialize)]
pub(crate) struct Address {
    line1: Line1,
    line2: Option<Suite>,
    city: &'static str,
    state: &'static str,
    postal_code: Postal,
    country: &'static str,
}

#[derive(Clone, Copy, Debug, Serialize)]
pub(crate) struct CustomerMeta {
    segment: &'static str,
    source: &'static str,
    plan: &'static str,
    employees: u64,
}

#[derive(Clone, Copy, Debug, Serialize)]
pub(crate) struct Customer {
    id: Id,
    object: &'static str,
    email: Email,
    name: Pair,
    phone: Phone,
    created_at: Day,
    updated_at: Rfc3339,
    currency: &'static str,
    tax_exempt: bool,
    address: Address,
    metadata: CustomerMeta,
}

#[derive(Clone, Copy, Debug, Serialize)]
pub(crate) struct Product {
    id: Id,
    object: &'static str,
    name: Pair,
    sku: Prefixed,
    price_cents: u64,
    currency: &'static str,
    active: bool,
    updated_at: Rfc3339,
}

#[derive(Clone, Copy, Debug, Serialize)]
pub(crate) struct Invoice {
    id: Id,
    object: &'static str,
    number: Prefixed,
    customer: Id,
    amount_cents: u64,
    currency: &'static str,
    status: &'static str,
    issued_at: Day,
    updated_at: Rfc3339,
}

#[derive(Clone, Copy, Debug, Serialize)]
pub(crate) struct Payment {
    id: Id,
    object: &'static str,
    invoice: Id,
    amount_cents: u64,
    method: &'static str,
    paid_at: Day,
    updated_at: Rfc3339,
}

/// One generated record in typed form: serializing it writes JSON with no intermediate tree.
#[derive(Clone, Copy, Debug, Serialize)]
#[serde(untagged)]
pub(crate) enum Rec {
    Customer(Customer),
    Product(Product),
    Invoice(Invoice),
    Payment(Payment),
}

impl Rec {
    /// The value of the entity's natural (business) key, used to fake duplicate keys.
    pub(crate) fn natural_key(&self) -> Option<(&'static str, String)> {
        match self {
            Rec::Customer(c) => Some(("email", c.email.text())),
            Rec::Product(p) => Some(("sku", p.sku.text())),
            Rec::Invoice(i) => Some(("number", i.number.text())),
            Rec::Payment(_) => None,
        }
    }

    /// Appends the record's JSON to `out`, byte-for-byte what serde would write, without the
    /// serializer's per-field overhead: this is the hot loop when a client pulls a million
    /// records.
    pub(crate) fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            Rec::Customer(c) => {
                str_field(out, br#"{"id":"#, &c.id);
                str_field(out, br#","object":"#, &c.object);
                str_field(out, br#","email":"#, &c.email);
                str_field(out, br#","name":"#, &c.name);
                str_field(out, br#","phone":"#, &c.phone);
                str_field(out, br#","created_at":"#, &c.created_at);
                str_field(out, br#","updated_at":"#, &c.updated_at);
                str_field(out, br#","currency":"#, &c.currency);
                bool_field(out, br#","tax_exempt":"#, c.tax_exempt);
                let a = &c.address;
                str_field(out, br#","address":{"line1":"#, &a.line1);
                match &a.line2 {
                    Some(line2) => str_field(out, br#","line2":"#, line2),
                    None => out.extend_from_slice(br#","line2":null"#),
                }
                str_field(out, br#","city":"#, &a.city);
                str_field(out, br#","state":"#, &a.state);
                str_field(out, br#","postal_code":"#, &a.postal_code);
                str_field(out, br#","country":"#, &a.country);
                let m = &c.metadata;
                str_field(out, br#"},"metadata":{"segment":"#, &m.segment);
                str_field(out, br#","source":"#, &m.source);
                str_field(out, br#","plan":"#, &m.plan);
                num_field(out, br#","employees":"#, m.employees);
                out.extend_from_slice(b"}}");
            }
            Rec::Product(p) => {
                str_field(out, br#"{"id":"#, &p.id);
                str_field(out, br#","object":"#, &p.object);
                str_field(out, br#","name":"#, &p.name);
                str_field(out, br#","sku":"#, &p.sku);
                num_field(out, br#","price_cents":"#, p.price_cents);
                str_field(out, br#","currency":"#, &p.currency);
                bool_field(out, br#","active":"#, p.active);
                str_field(out, br#","updated_at":"#, &p.updated_at);
                out.push(b'}');
            }
            Rec::Invoice(i) => {
                str_field(out, br#"{"id":"#, &i.id);
                str_field(out, br#","object":"#, &i.object);
                str_field(out, br#","number":"#, &i.number);
                str_field(out, br#","customer":"#, &i.customer);
                num_field(out, br#","amount_cents":"#, i.amount_cents);
                str_field(out, br#","currency":"#, &i.currency);
                str_field(out, br#","status":"#, &i.status);
                str_field(out, br#","issued_at":"#, &i.issued_at);
                str_field(out, br#","updated_at":"#, &i.updated_at);
                out.push(b'}');
            }
            Rec::Payment(p) => {
                str_field(out, br#"{"id":"#, &p.id);
                str_field(out, br#","object":"#, &p.object);
                str_field(out, br#","invoice":"#, &p.invoice);
                num_field(out, br#","amount_cents":"#, p.amount_cents);
                str_field(out, br#","method":"#, &p.method);
                str_field(out, br#","paid_at":"#, &p.paid_at);
                str_field(out, br#","updated_at":"#, &p.updated_at);
                out.push(b'}');
            }
        }
    }

    pub(crate) fn to_value(self) -> serde_json::Value {
        // Serializing plain structs of strings and integers into a Value cannot fail.
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

/// Produces records from (seed, entity, number); cheap to copy into every request.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Generator {
    pub(crate) seed: u64,
    pub(crate) counts: [u64; 4],
}

/// Days since the Unix epoch of 2026-01-01, the day record timestamps start.
const EPOCH_DAY: i64 = EPOCH / 86_400;

impl Generator {
    pub(crate) fn count(&self, entity: Entity) -> u64 {
        self.counts[entity.slot()]
    }

    /// The largest collection size: patched records get timestamps after all base ones.
    pub(crate) fn max_count(&self) -> u64 {
        self.counts.iter().copied().max().unwrap_or(0)
    }

    /// The first-version timestamp of record `n`: monotone in `n`, so an `updated_since`
    /// filter over untouched records is a suffix of the id range.
    pub(crate) const fn base_updated_at(n: u64) -> i64 {
        EPOCH + n as i64
    }

    /// Record `n` (1-based) of `entity`, stamped `updated_at`.
    pub(crate) fn record(&self, entity: Entity, n: u64, updated_at: i64) -> Rec {
        let h = hash3(self.seed, entity.slot() as u64 + 1, n);
        // Independent draws from one record hash: field k uses mix(h + k).
        let draw = |k: u64| mix(h.wrapping_add(k));
        let updated_at = Rfc3339(updated_at);
        let id = Id(entity, n);
        let object = entity.object();
        match entity {
            Entity::Customers => {
                let first = FIRST[(draw(1) % 32) as usize];
                let last = LAST[(draw(2) % 32) as usize];
                let (city, state, zip) = CITIES[(draw(3) % 16) as usize];
                let street = STREETS[(draw(4) % 16) as usize];
                let line2 = (draw(5) % 3 == 0).then_some(Suite(draw(6) % 900 + 100));
                Rec::Customer(Customer {
                    id,
                    object,
                    email: Email(first, last, n),
                    name: Pair(first, last),
                    phone: Phone(draw(7)),
                    created_at: Day(EPOCH_DAY - 1 - (draw(8) % 1_095) as i64),
                    updated_at,
                    currency: "usd",
                    tax_exempt: draw(14) % 20 == 0,
                    address: Address {
                        line1: Line1(draw(9) % 9_899 + 100, street),
                        line2,
                        city,
                        state,
                        postal_code: Postal(zip, draw(10) % 1_000),
                        country: "US",
                    },
                    metadata: CustomerMeta {
                        segment: SEGMENTS[(draw(11) % 4) as usize],
                        source: SOURCES[(draw(12) % 5) as usize],
                        plan: PLANS[(draw(15) % 4) as usize],
                        employees: 1 + draw(13) % 5_000,
                    },
                })
            }
            Entity::Products => Rec::Product(Product {
                id,
                object,
                name: Pair(
                    ADJECTIVES[(draw(1) % 16) as usize],
                    NOUNS[(draw(2) % 16) as usize],
                ),
                sku: Prefixed("SKU-", n),
                price_cents: (draw(3) % 500 + 1) * 100 - 1,
                currency: "usd",
                active: draw(4) % 10 != 0,
                updated_at,
            }),
            Entity::Invoices => Rec::Invoice(Invoice {
                id,
                object,
                number: Prefixed("INV-", n),
                customer: Id(
                    Entity::Customers,
                    n * 7_919 % self.count(Entity::Customers).max(1) + 1,
                ),
                amount_cents: 500 + draw(1) % 250_000,
                currency: "usd",
                status: STATUSES[(draw(2) % 8) as usize],
                issued_at: Day(EPOCH_DAY - 1 - (draw(3) % 365) as i64),
                updated_at,
            }),
            Entity::Payments => Rec::Payment(Payment {
                id,
                object,
                invoice: Id(
                    Entity::Invoices,
                    n * 104_729 % self.count(Entity::Invoices).max(1) + 1,
                ),
                amount_cents: 500 + draw(1) % 250_000,
                method: METHODS[(draw(2) % 4) as usize],
                paid_at: Day(EPOCH_DAY - 1 - (draw(3) % 365) as i64),
                updated_at,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gen() -> Generator {
        Generator {
            seed: 42,
            counts: [250, 50, 400, 300],
        }
    }

    #[test]
    fn fast_writer_matches_serde_byte_for_byte() {
        let g = Generator {
            seed: 9,
            counts: [5_000, 5_000, 5_000, 5_000],
        };
        for entity in Entity::ALL {
            for n in (1..5_000).step_by(7).chain([99_999_999, 123_456_789]) {
                let rec = g.record(entity, n, EPOCH + n as i64 * 977);
                let mut fast = Vec::new();
                rec.write_json(&mut fast);
                let slow = serde_json::to_vec(&rec).unwrap_or_default();
                assert_eq!(
                    String::from_utf8_lossy(&fast),
                    String::from_utf8_lossy(&slow)
                );
            }
        }
    }

    #[test]
    fn page_buffers_are_sized_for_the_largest_records() {
        let g = Generator {
            seed: 3,
            counts: [99_999_999; 4],
        };
        for entity in Entity::ALL {
            let (mut max, mut sum) = (0, 0);
            for n in (1..99_999_999).step_by(9_973) {
                let mut out = Vec::new();
                g.record(entity, n, EPOCH + n as i64).write_json(&mut out);
                max = max.max(out.len() + 1);
                sum += out.len() + 1;
            }
            assert!(
                sum / 10_027 > entity.approx_json_len() * 3 / 4,
                "{entity}: oversized"
            );
            assert!(max <= entity.approx_json_len(), "{entity}: {max}");
        }
    }

    #[test]
    fn word_lists_need_no_json_escaping() {
        let lists: [&[&str]; 10] = [
            &FIRST,
            &LAST,
            &STREETS,
            &SEGMENTS,
            &SOURCES,
            &PLANS,
            &ADJECTIVES,
            &NOUNS,
            &STATUSES,
            &METHODS,
        ];
        for word in lists
            .iter()
            .flat_map(|l| l.iter())
            .chain(CITIES.iter().flat_map(|c| [&c.0, &c.1]))
        {
            assert!(
                word.bytes().all(|b| b.is_ascii_graphic() || b == b' '),
                "{word}"
            );
            assert!(!word.contains(['"', '\\']), "{word}");
        }
    }

    #[test]
    fn entity_names_round_trip() {
        for e in Entity::ALL {
            assert_eq!(e.as_str().parse::<Entity>(), Ok(e));
            assert_eq!(
                serde_json::to_value(e).ok(),
                Some(serde_json::json!(e.as_str()))
            );
        }
        assert!("widgets".parse::<Entity>().is_err());
    }

    #[test]
    fn ids_are_zero_padded_and_canonical() {
        assert_eq!(Entity::Customers.id(1), "cus_00000001");
        assert_eq!(Entity::Invoices.id(123_456_789), "in_123456789");
        assert_eq!(Entity::Customers.parse_id("cus_00000042"), Some(42));
        assert_eq!(Entity::Invoices.parse_id("in_123456789"), Some(123_456_789));
        assert_eq!(Entity::Customers.parse_id("cus_42"), None);
        assert_eq!(Entity::Customers.parse_id("cus_000000042"), None);
        assert_eq!(Entity::Customers.parse_id("prod_00000042"), None);
        assert_eq!(Entity::Customers.parse_id("cus_0000004x"), None);
    }

    #[test]
    fn records_are_pure_functions_of_seed_and_index() {
        let a = serde_json::to_string(&gen().record(Entity::Customers, 7, EPOCH + 7)).ok();
        let b = serde_json::to_string(&gen().record(Entity::Customers, 7, EPOCH + 7)).ok();
        assert_eq!(a, b);
        let other = Generator { seed: 43, ..gen() };
        let c = serde_json::to_string(&other.record(Entity::Customers, 7, EPOCH + 7)).ok();
        assert_ne!(a, c);
    }

    #[test]
    fn customer_shape() {
        let v = gen().record(Entity::Customers, 1, EPOCH + 1).to_value();
        assert_eq!(v["id"], "cus_00000001");
        assert_eq!(v["object"], "customer");
        assert_eq!(v["updated_at"], "2026-01-01T00:00:01Z");
        assert_eq!(v["address"]["country"], "US");
        let email = v["email"].as_str().unwrap_or_default();
        assert!(
            email.ends_with("1@example.com") && email == email.to_lowercase(),
            "{email}"
        );
        let created = v["created_at"].as_str().unwrap_or_default();
        assert!(
            chrono::NaiveDate::parse_from_str(created, "%Y-%m-%d").is_ok(),
            "{created}"
        );
        assert!(v["phone"]
            .as_str()
            .unwrap_or_default()
            .starts_with("+1-555-"));
        let len = serde_json::to_string(&v)
            .map(|s| s.len())
            .unwrap_or_default();
        assert!((330..520).contains(&len), "customer json is {len} bytes");
    }

    #[test]
    fn references_point_at_existing_records() {
        let g = gen();
        for n in 1..=400 {
            let v = g.record(Entity::Invoices, n, EPOCH).to_value();
            let cus = Entity::Customers.parse_id(v["customer"].as_str().unwrap_or_default());
            assert!(matches!(cus, Some(c) if (1..=250).contains(&c)), "{v}");
        }
        for n in 1..=300 {
            let v = g.record(Entity::Payments, n, EPOCH).to_value();
            let inv = Entity::Invoices.parse_id(v["invoice"].as_str().unwrap_or_default());
            assert!(matches!(inv, Some(i) if (1..=400).contains(&i)), "{v}");
        }
    }

    #[test]
    fn other_shapes() {
        let g = gen();
        let p = g.record(Entity::Products, 3, EPOCH + 3).to_value();
        assert_eq!(p["sku"], "SKU-00000003");
        assert!(p["price_cents"].is_u64() && p["active"].is_boolean());
        let i = g.record(Entity::Invoices, 3, EPOCH + 3).to_value();
        assert_eq!(i["number"], "INV-00000003");
        assert!(["draft", "open", "paid", "void"].contains(&i["status"].as_str().unwrap_or("")));
        let pay = g.record(Entity::Payments, 3, EPOCH + 3).to_value();
        assert!(["card", "ach", "cash"].contains(&pay["method"].as_str().unwrap_or("")));
        assert_eq!(pay["object"], "payment");
    }
}
