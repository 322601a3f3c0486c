//! CreateTargetGroup, DescribeTargetGroups, ModifyTargetGroup, DeleteTargetGroup and the target
//! group attributes.

use crate::error::check;
use crate::requests::{
    CreateTargetGroupRequest, DescribeTargetGroupsRequest, ModifyAttributesRequest,
    ModifyTargetGroupRequest,
};
use crate::types::{Attribute, HealthCheckSettings, TargetGroup};
use crate::{attributes, validate, ElbError, ElbState};
use berth_model::{Arns, FieldErrors};

impl ElbState {
    /// CreateTargetGroup (`instance` or `ip` targets, HTTP or HTTPS). Creating one with the name
    /// and settings of an existing one returns the existing one, as AWS does.
    pub fn create_target_group(
        &mut self,
        arns: &Arns,
        req: &CreateTargetGroupRequest,
    ) -> Result<TargetGroup, ElbError> {
        let mut errors = FieldErrors::default();
        validate::name("Name", "target group", &req.name, &mut errors);
        let target_type = req.target_type.clone().unwrap_or_else(|| "instance".into());
        if target_type != "instance" && target_type != "ip" {
            errors.push("TargetType", format!("instance or ip was expected (berth does not run lambda or alb targets), found '{target_type}'"));
        }
        let protocol = match &req.protocol {
            Some(p) if p == "HTTP" || p == "HTTPS" => p.clone(),
            Some(p) => {
                errors.push("Protocol", format!("HTTP or HTTPS was expected for an application load balancer's target group, found '{p}'"));
                p.clone()
            }
            None => {
                errors.push(
                    "Protocol",
                    "a protocol (HTTP or HTTPS) was expected, found none",
                );
                String::new()
            }
        };
        let port = match req.port {
            Some(p) => validate::port("Port", p, &mut errors),
            None => {
                errors.push("Port", "a port from 1 to 65535 was expected, found none");
                0
            }
        };
        let protocol_version = req
            .protocol_version
            .clone()
            .unwrap_or_else(|| "HTTP1".into());
        if !["HTTP1", "HTTP2", "GRPC"].contains(&protocol_version.as_str()) {
            errors.push(
                "ProtocolVersion",
                format!("HTTP1, HTTP2 or GRPC was expected, found '{protocol_version}'"),
            );
        }
        let ip_address_type = req.ip_address_type.clone().unwrap_or_else(|| "ipv4".into());
        if ip_address_type != "ipv4" && ip_address_type != "ipv6" {
            errors.push(
                "IpAddressType",
                format!("ipv4 or ipv6 was expected, found '{ip_address_type}'"),
            );
        }
        let base = HealthCheckSettings {
            enabled: true,
            protocol: if protocol == "HTTPS" {
                "HTTPS".into()
            } else {
                "HTTP".into()
            },
            port: "traffic-port".into(),
            path: "/".into(),
            interval_seconds: 30.0,
            timeout_seconds: 5.0,
            healthy_threshold: 5,
            unhealthy_threshold: 2,
            matcher: "200".into(),
        };
        let health_check = validate::health_check(&req.health_check, &base, &mut errors);
        validate::tags(&req.tags, &mut errors);
        check(errors)?;
        Self::check_duplicate_tag_keys(&req.tags)?;
        let candidate = TargetGroup {
            arn: String::new(),
            name: req.name.clone(),
            protocol,
            protocol_version,
            port,
            vpc_id: req.vpc_id.clone(),
            target_type,
            ip_address_type,
            health_check,
        };
        if let Some(existing) = self.target_groups.iter().find(|tg| tg.name == req.name) {
            let same = TargetGroup {
                arn: String::new(),
                ..existing.clone()
            } == candidate;
            return if same {
                Ok(existing.clone())
            } else {
                Err(ElbError::DuplicateTargetGroupName(req.name.clone()))
            };
        }
        let id = self.new_id();
        let tg = TargetGroup {
            arn: arns.elb(&format!("targetgroup/{}/{id}", req.name)),
            ..candidate
        };
        self.target_groups.push(tg.clone());
        self.attributes
            .insert(tg.arn.clone(), attributes::target_group_defaults());
        self.set_initial_tags(&tg.arn, &req.tags);
        Ok(tg)
    }

    /// DescribeTargetGroups: all, those of a load balancer, or those named by ARN or name.
    pub fn describe_target_groups(
        &self,
        req: &DescribeTargetGroupsRequest,
    ) -> Result<Vec<TargetGroup>, ElbError> {
        let n_filters = usize::from(req.load_balancer_arn.is_some())
            + usize::from(!req.target_group_arns.is_empty())
            + usize::from(!req.names.is_empty());
        if n_filters > 1 {
            return Err(ElbError::field(
                "TargetGroupArns",
                "only one of LoadBalancerArn, TargetGroupArns and Names was expected",
            ));
        }
        if let Some(lb) = &req.load_balancer_arn {
            self.load_balancer(lb)?;
            return Ok(self
                .target_groups
                .iter()
                .filter(|tg| self.target_group_load_balancers(&tg.arn).contains(lb))
                .cloned()
                .collect());
        }
        if !req.target_group_arns.is_empty() {
            return req
                .target_group_arns
                .iter()
                .map(|arn| self.target_group(arn).cloned())
                .collect();
        }
        if !req.names.is_empty() {
            return req
                .names
                .iter()
                .map(|name| {
                    self.target_groups
                        .iter()
                        .find(|tg| tg.name == *name)
                        .cloned()
                        .ok_or_else(|| ElbError::TargetGroupNotFound(name.clone()))
                })
                .collect();
        }
        Ok(self.target_groups.clone())
    }

    /// ModifyTargetGroup: changes the given health check settings.
    pub fn modify_target_group(
        &mut self,
        req: &ModifyTargetGroupRequest,
    ) -> Result<TargetGroup, ElbError> {
        let current = self
            .target_group(&req.target_group_arn)?
            .health_check
            .clone();
        let mut errors = FieldErrors::default();
        let health_check = validate::health_check(&req.health_check, &current, &mut errors);
        check(errors)?;
        let tg = self
            .target_groups
            .iter_mut()
            .find(|tg| tg.arn == req.target_group_arn)
            .ok_or_else(|| ElbError::TargetGroupNotFound(req.target_group_arn.clone()))?;
        tg.health_check = health_check;
        Ok(tg.clone())
    }

    /// DeleteTargetGroup: refused while a listener or rule forwards to it. Deleting one that
    /// does not exist succeeds.
    pub fn delete_target_group(&mut self, target_group_arn: &str) -> Result<(), ElbError> {
        if self.target_group(target_group_arn).is_err() {
            return Ok(());
        }
        if let Some(user) = self.target_group_user(target_group_arn) {
            return Err(ElbError::ResourceInUse(format!("Target group '{target_group_arn}' is currently in use by a listener or a rule ({user})")));
        }
        self.target_groups.retain(|tg| tg.arn != target_group_arn);
        self.forget(target_group_arn);
        Ok(())
    }

    /// The ARN of a listener or rule that forwards to the target group.
    fn target_group_user(&self, target_group_arn: &str) -> Option<String> {
        let uses = |actions: &[crate::Action]| {
            actions
                .iter()
                .any(|a| Self::action_target_groups(a).contains(&target_group_arn))
        };
        self.listeners
            .iter()
            .find(|l| uses(&l.default_actions))
            .map(|l| l.arn.clone())
            .or_else(|| {
                self.rules
                    .iter()
                    .find(|r| uses(&r.actions))
                    .map(|r| r.arn.clone())
            })
    }

    /// DescribeTargetGroupAttributes.
    pub fn describe_target_group_attributes(
        &self,
        target_group_arn: &str,
    ) -> Result<Vec<Attribute>, ElbError> {
        self.target_group(target_group_arn)?;
        Ok(self.attribute_list(target_group_arn))
    }

    /// ModifyTargetGroupAttributes: sets the given keys, returns all attributes.
    pub fn modify_target_group_attributes(
        &mut self,
        req: &ModifyAttributesRequest,
    ) -> Result<Vec<Attribute>, ElbError> {
        self.target_group(&req.resource_arn)?;
        check(attributes::validate_target_group(&req.attributes))?;
        self.set_attributes(&req.resource_arn, &req.attributes);
        Ok(self.attribute_list(&req.resource_arn))
    }

    /// The deregistration delay of a target group in seconds (300 when unknown).
    pub fn deregistration_delay(&self, target_group_arn: &str) -> f64 {
        self.attribute(target_group_arn, "deregistration_delay.timeout_seconds")
            .and_then(|v| v.parse().ok())
            .unwrap_or(300.0)
    }
}
