//! The local stack: template.yaml reader, resource setup on the emulator, the gateway, queue
//! consumers and schedules.

pub mod consumer;
pub mod contract;
pub mod gateway;
pub mod resources;
pub mod schedule;
pub mod template;
