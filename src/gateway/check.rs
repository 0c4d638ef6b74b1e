//! What `hotwire check` reports about the gateway: the `hotwire/...` iceoryx2 services that exist
//! under the gateway's prefix, with their publishers and subscribers.

use iceoryx2::prelude::*;

use super::{iceoryx_config, GatewayError, HotwireHeader};

/// One subscriber of a gateway service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriberReport {
    /// Its queue depth.
    pub buffer_size: usize,
}

/// One gateway service as `hotwire check` sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceReport {
    /// `hotwire/<endpoint>/in` or `.../send`.
    pub name: String,
    /// Publishers connected now.
    pub publishers: usize,
    /// Subscribers connected now.
    pub subscribers: Vec<SubscriberReport>,
    /// The service's subscriber queue limit.
    pub max_buffer: usize,
    /// The service's subscriber limit.
    pub max_subscribers: usize,
}

/// Lists the gateway services (names starting with `hotwire/`) under the gateway's prefix. The
/// listing node cleans nothing up: a check never changes what it looks at.
pub fn services() -> Result<Vec<ServiceReport>, GatewayError> {
    super::quiet_iceoryx_log();
    let mut config = iceoryx_config()?;
    config.global.node.cleanup_dead_nodes_on_creation = false;
    config.global.node.cleanup_dead_nodes_on_destruction = false;
    config.global.service.cleanup_dead_nodes_on_open = false;
    let mut names = Vec::new();
    ipc::Service::list(&config, |details| {
        let name = details.static_details.name().as_str();
        if name.starts_with("hotwire/")
            && matches!(
                details.static_details.messaging_pattern(),
                iceoryx2::service::static_config::messaging_pattern::MessagingPattern::PublishSubscribe(_)
            )
        {
            names.push(name.to_owned());
        }
        CallbackProgression::Continue
    })
    .map_err(|e| super::iox("listing services under", "hotwire/", e))?;
    names.sort();
    if names.is_empty() {
        // No node for nothing: a node leaves iceoryx2's per-prefix counter in /dev/shm.
        return Ok(Vec::new());
    }
    let node = NodeBuilder::new()
        .config(&config)
        .signal_handling_mode(SignalHandlingMode::Disabled)
        .create::<ipc::Service>()
        .map_err(|e| super::iox("node for", "hotwire check", e))?;
    let mut reports = Vec::with_capacity(names.len());
    for name in names {
        let service = node
            .service_builder(&super::name_of(&name)?)
            .publish_subscribe::<[u8]>()
            .user_header::<HotwireHeader>()
            .open()
            .map_err(|e| super::iox("opening", &name, e))?;
        let dynamic = service.dynamic_config();
        let mut subscribers = Vec::new();
        dynamic.list_subscribers(|s| {
            subscribers.push(SubscriberReport {
                buffer_size: s.buffer_size,
            });
            CallbackProgression::Continue
        });
        let fixed = service.static_config();
        reports.push(ServiceReport {
            publishers: dynamic.number_of_publishers(),
            subscribers,
            max_buffer: fixed.subscriber_max_buffer_size(),
            max_subscribers: fixed.max_subscribers(),
            name,
        });
    }
    Ok(reports)
}

/// The report's lines: one per service, then a line per subscriber.
pub fn lines(reports: &[ServiceReport]) -> Vec<String> {
    if reports.is_empty() {
        return vec![
            "no hotwire/ iceoryx2 services (no appliance with publish = true runs)".into(),
        ];
    }
    let mut out = Vec::new();
    for r in reports {
        out.push(format!(
            "service {}: {} publisher(s), {} subscriber(s) of at most {} (queue limit {})",
            r.name,
            r.publishers,
            r.subscribers.len(),
            r.max_subscribers,
            r.max_buffer
        ));
        for (i, s) in r.subscribers.iter().enumerate() {
            out.push(format!(
                "  subscriber {}: queue {} samples",
                i + 1,
                s.buffer_size
            ));
        }
    }
    out
}
