//! [`Evidence`]: the transport-security facts of one message, from its life.

use crate::types::{Evidence, MessageLife};

impl Evidence {
    /// The inbound hop and every outbound attempt of `life`.
    pub fn from_life(life: &MessageLife) -> Evidence {
        Evidence {
            queue_id: life.queue_id.clone(),
            message_id: life.message_id.clone(),
            inbound: None,
            outbound: Vec::new(),
        }
    }
}
