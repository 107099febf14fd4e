//! Syncdesk engine: syncs business records between a local store and provider APIs and
//! survives their failures (SPEC §3–§9). No UI dependency: the desktop shell and the CLI
//! both drive it through [`Engine`].

pub mod catalog;
pub mod clock;
pub mod connector;
pub mod diagnosis;
mod diff;
mod engine;
pub mod error;
pub mod events;
pub mod mapping;
pub mod model;
pub mod policy;
pub mod record;
mod runner;
pub mod secrets;
mod sign_in;
pub mod store;
mod team;
pub use team::{ALIVE_WITHIN, HEARTBEAT, REPLAY_WITHIN, SHARED_POLL};
mod worker;

pub use clock::{Clock, ManualClock, SystemClock};
pub use connector::ConnectorSpec;
pub use diagnosis::{Action, Diagnosis, SchemaChange};
pub use engine::{
    ConnectionDeletion, Database, Engine, EngineOptions, ExecutionDetail, JobDeletion,
    NewConnection, NewJob, NewSetup, RecordRetryOutcome, RunOptions, Setup, DEFAULT_SCHEDULE,
};
pub use error::{Error, ErrorClass, Result};
pub use events::Event;
pub use mapping::FieldMapping;
pub use model::*;
pub use policy::RecordState;
pub use secrets::{KeyringSecretStore, MemorySecretStore, Secret, SecretKind, SecretStore};
pub use sign_in::SignIn;
pub use store::{Store, StoreKind};
pub use worker::Runnable;
