//! The SQS queue that S3 event notifications or an EventBridge rule feed, as `etl scheduler
//! --queue` reads it: long polls (a receive waits up to 10 seconds for a message, so an idle
//! scheduler makes six requests a minute and reacts at once, and a stop, which lets the poll
//! end, waits 10 seconds at most), one message at a time.
//!
//! A message is deleted only once every run it started succeeded (or had before). While its
//! runs go on, its visibility is extended, by the queue's own visibility timeout, each time
//! half of it has passed, so no other consumer receives it meanwhile. A message whose runs
//! failed, or which is not an S3 event, is left alone: it comes back when its visibility
//! timeout ends, and the queue's redrive policy moves it to a dead-letter queue after its
//! `maxReceiveCount`. One message at a time, because two objects triggering one job would
//! otherwise run it twice at once, and the loser of its lease would fail and be redelivered
//! until dead-lettered.

use std::time::Duration;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::QueueAttributeName;

use crate::error::{Error, Result};
use crate::location::aws::{AWS_ENDPOINT_URL_SQS, endpoint, sdk_config};

/// How long a receive waits for a message (SQS allows up to 20 s).
const LONG_POLL_SECONDS: i32 = 10;
/// Extensions of a message's visibility never go below this, whatever the queue says.
const MIN_VISIBILITY: Duration = Duration::from_secs(2);

pub struct Queue {
    client: Client,
    pub url: String,
    /// The queue's visibility timeout: how long a received message stays hidden.
    pub visibility: Duration,
}

/// A message received, until it is deleted or left.
#[derive(Debug, Clone)]
pub struct Message {
    pub id: String,
    pub body: String,
    receipt: String,
}

impl Queue {
    /// The queue at `url`, its visibility timeout read from it (which checks it exists).
    pub async fn connect(url: &str) -> Result<Queue> {
        let mut builder = aws_sdk_sqs::config::Builder::from(sdk_config().await);
        if let Some(endpoint) = endpoint(AWS_ENDPOINT_URL_SQS) {
            builder = builder.endpoint_url(endpoint);
        }
        let client = Client::from_conf(builder.build());
        let attributes = client
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::VisibilityTimeout)
            .send()
            .await
            .map_err(|e| match e.as_service_error().is_some_and(|s| s.is_queue_does_not_exist()) {
                true => Error::config(format!("--queue {url}: no such queue")),
                false => sqs_error(&format!("reading the attributes of queue {url}"), e),
            })?;
        let seconds = attributes
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::VisibilityTimeout))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(30);
        Ok(Queue { client, url: url.to_string(), visibility: Duration::from_secs(seconds) })
    }

    /// The next message, waiting up to the long poll for one; None when none came.
    pub async fn receive(&self) -> Result<Option<Message>> {
        let output = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(1)
            .wait_time_seconds(LONG_POLL_SECONDS)
            .send()
            .await
            .map_err(|e| sqs_error(&format!("receiving from {}", self.url), e))?;
        let Some(message) = output.messages.unwrap_or_default().into_iter().next() else { return Ok(None) };
        Ok(Some(Message {
            id: message.message_id.unwrap_or_default(),
            body: message.body.unwrap_or_default(),
            receipt: message.receipt_handle.unwrap_or_default(),
        }))
    }

    /// Keeps a message hidden for another visibility timeout, every half of one, forever:
    /// run it beside the work, which ends it.
    pub async fn keep_hidden(&self, message: &Message) -> Error {
        let extension = self.visibility.max(MIN_VISIBILITY);
        loop {
            tokio::time::sleep(extension / 2).await;
            let extended = self
                .client
                .change_message_visibility()
                .queue_url(&self.url)
                .receipt_handle(&message.receipt)
                .visibility_timeout(extension.as_secs() as i32)
                .send()
                .await;
            if let Err(e) = extended {
                return sqs_error(&format!("extending the visibility of message {}", message.id), e);
            }
        }
    }

    /// Makes a message visible again at once, for another consumer or a later run.
    pub async fn release(&self, message: &Message) -> Result<()> {
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(&message.receipt)
            .visibility_timeout(0)
            .send()
            .await
            .map_err(|e| sqs_error(&format!("giving back message {}", message.id), e))?;
        Ok(())
    }

    pub async fn delete(&self, message: &Message) -> Result<()> {
        self.client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(&message.receipt)
            .send()
            .await
            .map_err(|e| sqs_error(&format!("deleting message {}", message.id), e))?;
        Ok(())
    }
}

/// An SQS failure, named and explained (see [`crate::location::retry::sdk_error`]).
fn sqs_error<E: ProvideErrorMetadata + std::error::Error + 'static>(
    what: &str,
    error: SdkError<E, aws_sdk_sqs::config::http::HttpResponse>,
) -> Error {
    crate::location::retry::sdk_error("SQS", what, error)
}
