//! Creates, in the local emulator, the resources template.yaml declares: tables (keys,
//! GSIs, TTL), queues (with redrive to their dead-letter queue) and secrets. Idempotent:
//! running it again finds what exists.

use std::collections::HashMap;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::Value;

use crate::template::{ACCOUNT, Physical, Template, resolve, scalar};

type Res<T> = Result<T, String>;

fn sdk_err(e: impl std::error::Error) -> String {
    aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string()
}

/// Local physical name of a resource.
fn name(stack: &str, id: &str, props: &Value, key: &str) -> String {
    props[key]
        .as_str()
        .map_or_else(|| format!("{stack}-{id}"), str::to_owned)
}

pub async fn ensure(
    t: &Template,
    sdk: &SdkConfig,
    params: &HashMap<String, String>,
    stack: &str,
) -> Res<Physical> {
    let region = sdk.region().map_or_else(
        || crate::template::REGION_FALLBACK.to_owned(),
        |r| r.to_string(),
    );
    let mut phys = Physical {
        region: region.clone(),
        stack: stack.to_owned(),
        ..Default::default()
    };
    for (id, r) in t.resources() {
        // Names every resource has locally, whether or not the emulator backs it.
        let ty = r["Type"].as_str().unwrap_or_default();
        let local = format!("{stack}-{id}");
        match ty {
            "AWS::Serverless::Function" => {
                phys.attrs.insert(
                    (id.into(), "Arn".into()),
                    format!("arn:aws:lambda:{region}:{ACCOUNT}:function:{local}"),
                );
                phys.refs.insert(id.into(), local);
            }
            "AWS::Serverless::Api" => {
                phys.refs.insert(id.into(), "local".into());
            }
            _ => {
                phys.refs.insert(id.into(), local);
            }
        }
    }

    let ddb = aws_sdk_dynamodb::Client::new(sdk);
    for (id, r) in t.of_type("AWS::DynamoDB::Table") {
        let props = &r["Properties"];
        let table = name(stack, id, props, "TableName");
        ensure_table(&ddb, &table, props).await?;
        phys.attrs.insert(
            (id.into(), "Arn".into()),
            format!("arn:aws:dynamodb:{region}:{ACCOUNT}:table/{table}"),
        );
        phys.refs.insert(id.into(), table);
    }

    let sm = aws_sdk_secretsmanager::Client::new(sdk);
    for (id, r) in t.of_type("AWS::SecretsManager::Secret") {
        let props = &r["Properties"];
        let arn = ensure_secret(&sm, &name(stack, id, props, "Name"), props).await?;
        phys.refs.insert(id.into(), arn);
    }

    // A sender must be verified before SES sends from it.
    let ses = aws_sdk_sesv2::Client::new(sdk);
    for (id, r) in t.of_type("AWS::SES::EmailIdentity") {
        let props = resolve(&r["Properties"], &phys, params)?;
        let identity = scalar(&props["EmailIdentity"]);
        if ses
            .get_email_identity()
            .email_identity(&identity)
            .send()
            .await
            .is_err()
        {
            ses.create_email_identity()
                .email_identity(&identity)
                .send()
                .await
                .map_err(|e| format!("SES identity {identity}: {}", sdk_err(e)))?;
        }
        phys.refs.insert(id.into(), identity);
    }

    // Dead-letter queues first: a redrive policy names its target's ARN.
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let mut queues: Vec<_> = t.of_type("AWS::SQS::Queue").collect();
    queues.sort_by_key(|(_, r)| r["Properties"].get("RedrivePolicy").is_some());
    for (id, r) in queues {
        let props = resolve(&r["Properties"], &phys, params)?;
        let qname = name(stack, id, &props, "QueueName");
        let (url, arn) = ensure_queue(&sqs, &qname, &props).await?;
        phys.attrs.insert((id.into(), "Arn".into()), arn);
        phys.attrs
            .insert((id.into(), "QueueName".into()), qname.clone());
        phys.attrs
            .insert((id.into(), "QueueUrl".into()), url.clone());
        phys.refs.insert(id.into(), url);
    }
    Ok(phys)
}

fn key_schema(v: &Value) -> Res<Vec<KeySchemaElement>> {
    v.as_array()
        .ok_or("KeySchema must be a list")?
        .iter()
        .map(|k| {
            KeySchemaElement::builder()
                .attribute_name(scalar(&k["AttributeName"]))
                .key_type(KeyType::from(scalar(&k["KeyType"]).as_str()))
                .build()
                .map_err(|e| e.to_string())
        })
        .collect()
}

async fn ensure_table(ddb: &aws_sdk_dynamodb::Client, table: &str, props: &Value) -> Res<()> {
    if ddb.describe_table().table_name(table).send().await.is_ok() {
        return Ok(());
    }
    let mut req = ddb
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .set_key_schema(Some(key_schema(&props["KeySchema"])?));
    for a in props["AttributeDefinitions"]
        .as_array()
        .into_iter()
        .flatten()
    {
        req = req.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(scalar(&a["AttributeName"]))
                .attribute_type(ScalarAttributeType::from(
                    scalar(&a["AttributeType"]).as_str(),
                ))
                .build()
                .map_err(|e| e.to_string())?,
        );
    }
    for g in props["GlobalSecondaryIndexes"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let projection = Projection::builder()
            .projection_type(ProjectionType::from(
                g["Projection"]["ProjectionType"].as_str().unwrap_or("ALL"),
            ))
            .set_non_key_attributes(
                g["Projection"]["NonKeyAttributes"]
                    .as_array()
                    .map(|a| a.iter().map(scalar).collect()),
            )
            .build();
        req = req.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(scalar(&g["IndexName"]))
                .set_key_schema(Some(key_schema(&g["KeySchema"])?))
                .projection(projection)
                .build()
                .map_err(|e| e.to_string())?,
        );
    }
    req.send()
        .await
        .map_err(|e| format!("create table {table}: {}", sdk_err(e)))?;
    let ttl = &props["TimeToLiveSpecification"];
    if ttl["Enabled"] == true {
        ddb.update_time_to_live()
            .table_name(table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(scalar(&ttl["AttributeName"]))
                    .enabled(true)
                    .build()
                    .map_err(|e| e.to_string())?,
            )
            .send()
            .await
            .map_err(|e| format!("TTL on {table}: {}", sdk_err(e)))?;
    }
    Ok(())
}

/// A random secret like CloudFormation's `GenerateSecretString`.
fn generate_secret(spec: &Value) -> String {
    let len = spec["PasswordLength"].as_u64().unwrap_or(32) as usize;
    let alphabet: &[u8] = if spec["ExcludePunctuation"] == true {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    } else {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$%&()*+,-.:;<=>?[]^_{|}~"
    };
    koppel_shared::ids::random_string(alphabet, len)
}

async fn ensure_secret(
    sm: &aws_sdk_secretsmanager::Client,
    name: &str,
    props: &Value,
) -> Res<String> {
    if let Ok(d) = sm.describe_secret().secret_id(name).send().await {
        return Ok(d.arn().unwrap_or(name).to_owned());
    }
    let value = match props.get("SecretString") {
        Some(s) => scalar(s),
        None => generate_secret(&props["GenerateSecretString"]),
    };
    let out = sm
        .create_secret()
        .name(name)
        .secret_string(value)
        .send()
        .await
        .map_err(|e| format!("create secret {name}: {}", sdk_err(e)))?;
    Ok(out.arn().unwrap_or(name).to_owned())
}

async fn ensure_queue(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    props: &Value,
) -> Res<(String, String)> {
    let mut attrs = HashMap::new();
    for (key, attr) in [
        ("VisibilityTimeout", QueueAttributeName::VisibilityTimeout),
        (
            "MessageRetentionPeriod",
            QueueAttributeName::MessageRetentionPeriod,
        ),
        ("DelaySeconds", QueueAttributeName::DelaySeconds),
        (
            "ReceiveMessageWaitTimeSeconds",
            QueueAttributeName::ReceiveMessageWaitTimeSeconds,
        ),
        ("MaximumMessageSize", QueueAttributeName::MaximumMessageSize),
    ] {
        if let Some(v) = props.get(key) {
            attrs.insert(attr, scalar(v));
        }
    }
    if let Some(r) = props.get("RedrivePolicy") {
        let policy = serde_json::json!({
            "deadLetterTargetArn": r["deadLetterTargetArn"],
            "maxReceiveCount": scalar(&r["maxReceiveCount"]),
        });
        attrs.insert(QueueAttributeName::RedrivePolicy, policy.to_string());
    }
    let url = match sqs.get_queue_url().queue_name(name).send().await {
        Ok(o) => o.queue_url().unwrap_or_default().to_owned(),
        Err(_) => sqs
            .create_queue()
            .queue_name(name)
            .set_attributes(Some(attrs))
            .send()
            .await
            .map_err(|e| format!("create queue {name}: {}", sdk_err(e)))?
            .queue_url()
            .unwrap_or_default()
            .to_owned(),
    };
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| format!("queue {name}: {}", sdk_err(e)))?
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .ok_or_else(|| format!("queue {name} has no ARN"))?;
    Ok((url, arn))
}
