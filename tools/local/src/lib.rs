//! The local stack: template.yaml reader, resource setup on the emulator, and the gateway.

pub mod consumer;
pub mod gateway;
pub mod resources;
pub mod template;
