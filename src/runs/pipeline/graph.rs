//! The graph of a pipeline: its jobs, and which runs after which, and why.
//!
//! A job runs after every other job that writes a table it reads, and after the jobs its
//! `depends_on` names. Each edge keeps its reason (the table, or `depends_on`), so a pair of
//! jobs joined for two reasons has two edges, and `pipeline show` can say why each exists. A
//! job that reads a table it writes itself (its previous output) depends on nothing for it.
//!
//! Refused here, naming what is wrong: a job named twice, a `depends_on` naming no job of the
//! pipeline, a cycle (the jobs on it, and why each follows the one before). What is left is a
//! graph whose order is total and deterministic: jobs in dependency order, ties broken by name.
//! Whether two writers of one table conflict is decided by their targets, in
//! [`super::tables::overlap`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;

use serde::{Serialize, Serializer};

use crate::catalog::TableName;
use crate::error::{Error, Result};

/// A job as the graph sees it.
#[derive(Debug, Clone)]
pub struct Node {
    pub job: String,
    /// Its job file, for messages.
    pub file: PathBuf,
    pub reads: BTreeSet<TableName>,
    pub writes: BTreeSet<TableName>,
    /// As its job file declares them.
    pub depends_on: Vec<String>,
}

/// Why one job runs after another.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Why {
    /// The first writes this table and the second reads it.
    Table(TableName),
    /// The second names the first in `depends_on`.
    DependsOn,
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Why::Table(table) => write!(f, "{table}"),
            Why::DependsOn => f.write_str("depends_on"),
        }
    }
}

impl Serialize for Why {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Edge {
    pub from: String,
    pub to: String,
    pub why: Why,
}

/// Jobs in dependency order, and the edges between them.
#[derive(Debug, Clone)]
pub struct Graph {
    nodes: Vec<Node>,
    edges: Vec<Edge>,
}

impl Graph {
    /// The graph of these jobs, or a configuration error naming the jobs and tables at fault.
    pub fn new(nodes: Vec<Node>) -> Result<Graph> {
        let mut files: BTreeMap<&str, &PathBuf> = BTreeMap::new();
        for node in &nodes {
            if let Some(other) = files.insert(&node.job, &node.file) {
                return Err(Error::config(format!(
                    "job files {} and {} both name job {}",
                    other.display(),
                    node.file.display(),
                    node.job
                )));
            }
        }
        let mut edges = Vec::new();
        for node in &nodes {
            for upstream in &node.depends_on {
                if !files.contains_key(upstream.as_str()) {
                    let known: Vec<&str> = files.keys().copied().collect();
                    return Err(Error::config(format!(
                        "job file {}: depends_on: job {upstream} is not a job of this pipeline (its jobs: {})",
                        node.file.display(),
                        known.join(", ")
                    )));
                }
                edges.push(Edge { from: upstream.clone(), to: node.job.clone(), why: Why::DependsOn });
            }
            for table in &node.reads {
                for writer in nodes.iter().filter(|w| w.job != node.job && w.writes.contains(table)) {
                    edges.push(Edge { from: writer.job.clone(), to: node.job.clone(), why: Why::Table(table.clone()) });
                }
            }
        }
        let order = order(&nodes, &edges)?;
        let position: BTreeMap<&str, usize> = order.iter().enumerate().map(|(i, job)| (job.as_str(), i)).collect();
        edges.sort_by(|a, b| {
            (position[a.from.as_str()], position[a.to.as_str()], &a.why).cmp(&(
                position[b.from.as_str()],
                position[b.to.as_str()],
                &b.why,
            ))
        });
        let mut nodes = nodes;
        nodes.sort_by_key(|n| position[n.job.as_str()]);
        Ok(Graph { nodes, edges })
    }

    /// The jobs, each after every job it depends on.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    pub fn node(&self, job: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.job == job)
    }

    pub fn edges(&self) -> &[Edge] {
        &self.edges
    }

    /// The jobs `job` runs after, each once, by name.
    pub fn upstream(&self, job: &str) -> Vec<&str> {
        let set: BTreeSet<&str> = self.edges.iter().filter(|e| e.to == job).map(|e| e.from.as_str()).collect();
        set.into_iter().collect()
    }

    /// `jobs` and every job downstream of them, in dependency order.
    pub fn with_downstream(&self, jobs: &[String]) -> Vec<&str> {
        let mut reached: BTreeSet<&str> = jobs.iter().map(String::as_str).collect();
        for node in &self.nodes {
            if self.upstream(&node.job).iter().any(|u| reached.contains(u)) {
                reached.insert(&node.job);
            }
        }
        self.nodes.iter().map(|n| n.job.as_str()).filter(|j| reached.contains(j)).collect()
    }
}

/// Kahn's order, taking the first ready job by name; a cycle is refused, naming it.
fn order(nodes: &[Node], edges: &[Edge]) -> Result<Vec<String>> {
    let mut upstream: BTreeMap<&str, BTreeSet<&str>> =
        nodes.iter().map(|n| (n.job.as_str(), BTreeSet::new())).collect();
    for edge in edges {
        upstream.entry(edge.to.as_str()).or_default().insert(edge.from.as_str());
    }
    let mut order = Vec::new();
    let mut left = upstream.clone();
    while let Some(ready) = left.iter().find(|(_, ups)| ups.is_empty()).map(|(job, _)| *job) {
        left.remove(ready);
        for ups in left.values_mut() {
            ups.remove(ready);
        }
        order.push(ready.to_string());
    }
    if left.is_empty() {
        return Ok(order);
    }
    Err(Error::config(format!("the jobs {}", describe_cycle(&left, edges))))
}

/// A cycle among jobs that each have an upstream job left: walking from one to an upstream
/// job of it must come back to a job already seen.
fn describe_cycle(left: &BTreeMap<&str, BTreeSet<&str>>, edges: &[Edge]) -> String {
    let start = *left.keys().next().expect("a cycle has jobs");
    let mut path = vec![start];
    let mut current = start;
    let first_seen = loop {
        current = *left[current].iter().next().expect("every job left has an upstream job left");
        if let Some(at) = path.iter().position(|j| *j == current) {
            break at;
        }
        path.push(current);
    };
    // Walked upstream; the cycle runs the other way, from its smallest name.
    let mut cycle: Vec<&str> = path[first_seen..].iter().rev().copied().collect();
    let smallest = cycle.iter().enumerate().min_by_key(|(_, j)| **j).map(|(i, _)| i).unwrap_or(0);
    cycle.rotate_left(smallest);
    let mut steps = vec![cycle[0].to_string()];
    for (i, from) in cycle.iter().enumerate() {
        let to = cycle[(i + 1) % cycle.len()];
        let whys: Vec<String> =
            edges.iter().filter(|e| e.from == *from && e.to == to).map(|e| e.why.to_string()).collect();
        steps.push(format!("-> {to} ({})", whys.join(", ")));
    }
    format!("{} form a cycle: {}", cycle.join(", "), steps.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(job: &str, reads: &[&str], writes: &[&str], depends_on: &[&str]) -> Node {
        let tables = |names: &[&str]| names.iter().map(|n| n.parse().unwrap()).collect();
        Node {
            job: job.into(),
            file: PathBuf::from(format!("p/{job}.toml")),
            reads: tables(reads),
            writes: tables(writes),
            depends_on: depends_on.iter().map(|d| d.to_string()).collect(),
        }
    }

    fn edges(graph: &Graph) -> Vec<String> {
        graph.edges().iter().map(|e| format!("{} -> {} ({})", e.from, e.to, e.why)).collect()
    }

    fn jobs(graph: &Graph) -> Vec<&str> {
        graph.nodes().iter().map(|n| n.job.as_str()).collect()
    }

    /// Two crawls, a join of both, a report of the join, and an export told to follow it.
    fn four_jobs() -> Vec<Node> {
        vec![
            node("report", &["mart.joined"], &["mart.report"], &[]),
            node("export", &[], &["out.export"], &["report"]),
            node("orders", &["raw.orders"], &["clean.orders"], &[]),
            node("join", &["clean.customers", "clean.orders"], &["mart.joined"], &[]),
            node("customers", &["raw.customers", "clean.customers"], &["clean.customers"], &[]),
        ]
    }

    #[test]
    fn edges_come_from_tables_and_depends_on_in_dependency_order() {
        let graph = Graph::new(four_jobs()).unwrap();
        assert_eq!(jobs(&graph), ["customers", "orders", "join", "report", "export"]);
        assert_eq!(
            edges(&graph),
            [
                "customers -> join (clean.customers)",
                "orders -> join (clean.orders)",
                "join -> report (mart.joined)",
                "report -> export (depends_on)",
            ]
        );
        assert_eq!(graph.upstream("join"), ["customers", "orders"]);
        assert_eq!(graph.with_downstream(&["orders".into()]), ["orders", "join", "report", "export"]);
        assert_eq!(graph.with_downstream(&["report".into()]), ["report", "export"]);
    }

    #[test]
    fn two_reasons_make_two_edges() {
        let mut nodes = four_jobs();
        nodes[3].depends_on.push("orders".into());
        let graph = Graph::new(nodes).unwrap();
        let into_join: Vec<String> = edges(&graph).into_iter().filter(|e| e.starts_with("orders")).collect();
        assert_eq!(into_join, ["orders -> join (clean.orders)", "orders -> join (depends_on)"]);
    }

    #[test]
    fn a_cycle_is_refused_naming_its_jobs_and_why() {
        let mut nodes = four_jobs();
        nodes[2].depends_on.push("export".into());
        let err = Graph::new(nodes).unwrap_err();
        assert_eq!(err.kind().exit_code(), 2);
        assert_eq!(
            err.message(),
            "the jobs export, orders, join, report form a cycle: export -> orders (depends_on) -> join (clean.orders) \
             -> report (mart.joined) -> export (depends_on)"
        );
        let two = vec![node("a", &["t.b"], &["t.a"], &[]), node("b", &["t.a"], &["t.b"], &[])];
        assert_eq!(Graph::new(two).unwrap_err().message(), "the jobs a, b form a cycle: a -> b (t.a) -> a (t.b)");
    }

    #[test]
    fn an_unknown_dependency_or_a_job_named_twice_is_refused() {
        let mut nodes = four_jobs();
        nodes[0].depends_on.push("joins".into());
        let err = Graph::new(nodes).unwrap_err();
        assert_eq!(
            err.message(),
            "job file p/report.toml: depends_on: job joins is not a job of this pipeline \
             (its jobs: customers, export, join, orders, report)"
        );
        let mut twice = four_jobs();
        twice[1].job = "report".into();
        assert!(Graph::new(twice).unwrap_err().message().contains("both name job report"));
    }

    #[test]
    fn reading_its_own_output_is_no_dependency() {
        let graph = Graph::new(vec![node("a", &["t.a"], &["t.a"], &[])]).unwrap();
        assert!(graph.edges().is_empty());
    }
}
