//! The Step Functions state machine that runs a pipeline on AWS: its jobs in graph order as
//! ECS tasks, each retried (3 attempts, backoff 2, as Step Functions' own guidance shows), and
//! a failure published to the pipeline's topic.
//!
//! One machine serves every way a run starts ([`Route`]): an S3 `Object Created` event (as
//! EventBridge delivers it) runs `etl trigger`, which picks the jobs the object starts; an input
//! naming `job_file` runs that job (a job's own schedule); anything else runs the whole graph.
//! The logical date is the input's `logical_date`, else the execution's start date (UTC): a
//! schedule's fire time, as `etl scheduler` dates its runs.
//!
//! Jobs of one level of the graph (whose upstream jobs are all in earlier levels) run at once
//! in a `Parallel` state; levels run in order. The definition is written with `Fn::Sub`
//! variables (`${ClusterArn}`, …) the template fills in.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::policy::literal;
use crate::runs::pipeline::Pipeline;

/// The `Fn::Sub` variables the definition names.
pub const VARIABLES: &[&str] = &[
    "ClusterArn",
    "TaskDefinitionArn",
    "TopicArn",
    "SubnetList",
    "SecurityGroupList",
    "AssignPublicIp",
    "PipelinePath",
];

/// The container of the task definition.
pub const CONTAINER: &str = "etl";

const RETRY_ATTEMPTS: u32 = 3;
const RETRY_INTERVAL_SECONDS: u32 = 60;
const RETRY_BACKOFF: f64 = 2.0;

/// The jobs of each level of the graph, in order; a level's jobs by name.
pub fn levels(pipeline: &Pipeline) -> Vec<Vec<String>> {
    let mut level_of: BTreeMap<&str, usize> = BTreeMap::new();
    // The graph's nodes are in dependency order: a job's upstream jobs have their level.
    for node in pipeline.graph.nodes() {
        let level = pipeline.graph.upstream(&node.job).iter().map(|u| level_of[u] + 1).max().unwrap_or(0);
        level_of.insert(&node.job, level);
    }
    let mut levels: Vec<Vec<String>> = Vec::new();
    for node in pipeline.graph.nodes() {
        let level = level_of[node.job.as_str()];
        if levels.len() <= level {
            levels.resize(level + 1, Vec::new());
        }
        levels[level].push(node.job.clone());
    }
    levels
}

/// The state machine's definition (Amazon States Language), as text with `Fn::Sub` variables.
pub fn definition(pipeline: &Pipeline) -> String {
    let levels = levels(pipeline);
    let mut states = serde_json::Map::new();
    states.insert(
        "Route".into(),
        json!({
            "Type": "Choice",
            "Comment": "An S3 event runs etl trigger; a given logical_date is kept; else the start date",
            "Choices": [
                { "Variable": "$.detail-type", "IsPresent": true, "Next": "Trigger" },
                { "Variable": "$.logical_date", "IsPresent": true, "Next": "GivenDate" },
            ],
            "Default": "StartDate",
        }),
    );
    states.insert(
        "GivenDate".into(),
        json!({ "Type": "Pass", "Parameters": { "value.$": "$.logical_date" }, "ResultPath": "$.date", "Next": "Which" }),
    );
    states.insert(
        "StartDate".into(),
        json!({
            "Type": "Pass",
            "Parameters": { "value.$": "States.ArrayGetItem(States.StringSplit($$.Execution.StartTime, 'T'), 0)" },
            "ResultPath": "$.date",
            "Next": "Which",
        }),
    );
    let first = levels.first().map(|l| level_state(0, l)).unwrap_or_else(|| "Succeeded".into());
    states.insert(
        "Which".into(),
        json!({
            "Type": "Choice",
            "Choices": [{ "Variable": "$.job_file", "IsPresent": true, "Next": "RunOneJob" }],
            "Default": first,
        }),
    );
    states.insert(
        "RunOneJob".into(),
        task(json!("States.Array('run', States.Format('${PipelinePath}/{}', $.job_file), '--logical-date', $.date.value, '--json')"), None)
            .with_next("Succeeded", true),
    );
    states.insert(
        "Trigger".into(),
        task(
            json!(["trigger", "${PipelinePath}", "--json"]),
            Some(json!([{ "Name": "ETL_EVENT", "Value.$": "States.JsonToString($)" }])),
        )
        .with_next("Succeeded", true),
    );
    for (index, jobs) in levels.iter().enumerate() {
        let next = levels.get(index + 1).map(|l| level_state(index + 1, l)).unwrap_or_else(|| "Succeeded".into());
        let state = match jobs.as_slice() {
            [job] => job_task(pipeline, job).with_next(&next, true),
            _ => {
                let branches: Vec<Value> = jobs
                    .iter()
                    .map(|job| {
                        let mut task = job_task(pipeline, job);
                        task["End"] = json!(true);
                        json!({ "StartAt": job_state(job), "States": { job_state(job): task } })
                    })
                    .collect();
                json!({ "Type": "Parallel", "Branches": branches, "ResultPath": null }).with_next(&next, true)
            }
        };
        states.insert(level_state(index, jobs), state);
    }
    states.insert(
        "NotifyFailure".into(),
        json!({
            "Type": "Task",
            "Resource": "arn:${AWS::Partition}:states:::sns:publish",
            "Parameters": {
                "TopicArn": "${TopicArn}",
                "Subject": format!("etl pipeline {} failed", literal(&pipeline.name)),
                "Message.$": "States.JsonToString($)",
            },
            "Next": "Failed",
        }),
    );
    states.insert("Failed".into(), json!({ "Type": "Fail", "Error": "PipelineFailed" }));
    states.insert("Succeeded".into(), json!({ "Type": "Succeed" }));
    let machine = json!({
        "Comment": format!("etl pipeline {}: its jobs in graph order", literal(&pipeline.name)),
        "StartAt": "Route",
        "States": states,
    });
    serde_json::to_string_pretty(&machine).expect("a definition serialises")
}

/// A job's state: `Job_NAME`, within the 80 characters Step Functions takes for a state's
/// name (a longer one keeps its start and a digest of the whole, so two stay apart).
fn job_state(job: &str) -> String {
    let name = format!("Job_{job}");
    if name.len() <= 80 {
        return name;
    }
    format!("{}_{:04x}", &name[..75], crate::schema::names::digest(job) as u16)
}

/// A level's state: its job's, or a `Parallel` named after the level.
fn level_state(index: usize, jobs: &[String]) -> String {
    match jobs {
        [job] => job_state(job),
        _ => format!("Level{}", index + 1),
    }
}

fn job_task(pipeline: &Pipeline, job: &str) -> Value {
    let file = pipeline
        .job(job)
        .and_then(|j| j.file.file_name())
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| format!("{job}.toml"));
    // `'`, `{`, `}` and `\` are an intrinsic function's own characters: escaped with a
    // backslash in its string literals (before the escaping `Fn::Sub` takes).
    let escaped: String = file
        .chars()
        .flat_map(|c| match c {
            '\'' | '{' | '}' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect();
    let file = literal(&escaped);
    task(
        json!(format!("States.Array('run', '${{PipelinePath}}/{file}', '--logical-date', $.date.value, '--json')")),
        None,
    )
}

/// An ECS task of the pipeline's task definition, run to its end, with the given command
/// (an array, or an intrinsic that makes one) and environment.
fn task(command: Value, environment: Option<Value>) -> Value {
    let mut container = json!({ "Name": CONTAINER });
    match command {
        Value::String(intrinsic) => container["Command.$"] = json!(intrinsic),
        array => container["Command"] = array,
    }
    if let Some(environment) = environment {
        container["Environment"] = environment;
    }
    json!({
        "Type": "Task",
        "Resource": "arn:${AWS::Partition}:states:::ecs:runTask.sync",
        "Parameters": {
            "Cluster": "${ClusterArn}",
            "TaskDefinition": "${TaskDefinitionArn}",
            "LaunchType": "FARGATE",
            "NetworkConfiguration": {
                "AwsvpcConfiguration": {
                    "Subnets.$": "States.StringSplit('${SubnetList}', ',')",
                    "SecurityGroups.$": "States.StringSplit('${SecurityGroupList}', ',')",
                    "AssignPublicIp": "${AssignPublicIp}",
                }
            },
            "Overrides": { "ContainerOverrides": [container] },
        },
        "ResultPath": null,
        "Retry": [{
            "ErrorEquals": ["States.ALL"],
            "IntervalSeconds": RETRY_INTERVAL_SECONDS,
            "MaxAttempts": RETRY_ATTEMPTS,
            "BackoffRate": RETRY_BACKOFF,
        }],
    })
}

trait WithNext {
    /// The state, going on to `next`, and to `NotifyFailure` when it fails (`catch`).
    fn with_next(self, next: &str, catch: bool) -> Value;
}

impl WithNext for Value {
    fn with_next(mut self, next: &str, catch: bool) -> Value {
        self["Next"] = json!(next);
        if catch {
            self["Catch"] =
                json!([{ "ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "NotifyFailure" }]);
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipeline(jobs: &[(&str, &str, &str)]) -> (tempfile::TempDir, Pipeline) {
        let dir = tempfile::tempdir().unwrap();
        for (name, query, table) in jobs {
            let text = format!(
                "name = \"{name}\"\n[[target]]\ntable = \"{table}\"\nquery = \"{query}\"\nlocation = \"s3://lake/{name}/\"\n"
            );
            std::fs::write(dir.path().join(format!("{name}.toml")), text).unwrap();
        }
        let pipeline = Pipeline::load(dir.path()).unwrap();
        (dir, pipeline)
    }

    #[test]
    fn levels_run_in_order_and_their_jobs_at_once() {
        let (_dir, pipeline) = pipeline(&[
            ("a", "SELECT 1 AS x", "mart.a"),
            ("b", "SELECT 2 AS x", "mart.b"),
            ("c", "SELECT * FROM mart.a JOIN mart.b USING (x)", "mart.c"),
        ]);
        assert_eq!(levels(&pipeline), [vec!["a".to_string(), "b".into()], vec!["c".into()]]);
        let machine: Value = serde_json::from_str(&definition(&pipeline)).unwrap();
        let states = &machine["States"];
        assert_eq!(states["Which"]["Default"], "Level1");
        assert_eq!(states["Level1"]["Type"], "Parallel");
        assert_eq!(states["Level1"]["Next"], "Job_c");
        assert_eq!(states["Level1"]["Catch"][0]["Next"], "NotifyFailure");
        let branch_task = &states["Level1"]["Branches"][1]["States"]["Job_b"];
        assert_eq!(branch_task["Retry"][0]["MaxAttempts"], 3);
        assert_eq!(branch_task["Retry"][0]["BackoffRate"], 2.0);
        let command = branch_task["Parameters"]["Overrides"]["ContainerOverrides"][0]["Command.$"].as_str().unwrap();
        assert_eq!(command, "States.Array('run', '${PipelinePath}/b.toml', '--logical-date', $.date.value, '--json')");
        assert_eq!(states["Job_c"]["Next"], "Succeeded");
        let names: Vec<&str> = machine["States"].as_object().unwrap().keys().map(String::as_str).collect();
        for state in
            [&states["Route"]["Default"], &states["Route"]["Choices"][0]["Next"], &states["Job_c"]["Catch"][0]["Next"]]
        {
            assert!(names.contains(&state.as_str().unwrap()), "{state} is a state");
        }
    }

    #[test]
    fn every_variable_the_definition_names_is_one_the_template_fills() {
        let (_dir, pipeline) = pipeline(&[("a", "SELECT 1 AS x", "mart.a")]);
        let text = definition(&pipeline);
        let named: std::collections::BTreeSet<&str> =
            text.match_indices("${").map(|(at, _)| text[at + 2..].split('}').next().unwrap()).collect();
        for variable in named {
            assert!(VARIABLES.contains(&variable) || variable == "AWS::Partition", "{variable}");
        }
    }
}
