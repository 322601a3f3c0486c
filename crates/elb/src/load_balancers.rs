//! CreateLoadBalancer, DescribeLoadBalancers, DeleteLoadBalancer and the load balancer attributes.

use crate::error::check;
use crate::requests::{
    CreateLoadBalancerRequest, DescribeLoadBalancersRequest, ModifyAttributesRequest,
};
use crate::types::{Attribute, LoadBalancer};
use crate::{attributes, validate, ElbError, ElbState};
use berth_model::{Arns, FieldErrors};

impl ElbState {
    /// CreateLoadBalancer: an application load balancer, `active` at once. Creating one with the
    /// name and settings of an existing one returns the existing one, as AWS does.
    pub fn create_load_balancer(
        &mut self,
        arns: &Arns,
        req: &CreateLoadBalancerRequest,
        now: f64,
    ) -> Result<LoadBalancer, ElbError> {
        let mut errors = FieldErrors::default();
        validate::name("Name", "load balancer", &req.name, &mut errors);
        let scheme = req
            .scheme
            .clone()
            .unwrap_or_else(|| "internet-facing".into());
        if scheme != "internet-facing" && scheme != "internal" {
            errors.push(
                "Scheme",
                format!("internet-facing or internal was expected, found '{scheme}'"),
            );
        }
        let lb_type = req
            .load_balancer_type
            .clone()
            .unwrap_or_else(|| "application".into());
        if lb_type != "application" {
            errors.push("Type", format!("application was expected (berth has only application load balancers), found '{lb_type}'"));
        }
        let ip_address_type = req.ip_address_type.clone().unwrap_or_else(|| "ipv4".into());
        if !["ipv4", "dualstack", "dualstack-without-public-ipv4"]
            .contains(&ip_address_type.as_str())
        {
            errors.push(
                "IpAddressType",
                format!("ipv4 or dualstack was expected, found '{ip_address_type}'"),
            );
        }
        validate::tags(&req.tags, &mut errors);
        check(errors)?;
        Self::check_duplicate_tag_keys(&req.tags)?;
        let mut subnets = req.subnets.clone();
        subnets.extend(req.subnet_mappings.iter().cloned());
        if let Some(existing) = self.load_balancers.iter().find(|lb| lb.name == req.name) {
            let same = existing.scheme == scheme
                && existing.subnets == subnets
                && existing.security_groups == req.security_groups;
            return if same {
                Ok(existing.clone())
            } else {
                Err(ElbError::DuplicateLoadBalancerName(req.name.clone()))
            };
        }
        let id = self.new_id();
        let arn = arns.elb(&format!("loadbalancer/app/{}/{id}", req.name));
        let number = u64::from_str_radix(&id[..8], 16).unwrap_or(0);
        let prefix = if scheme == "internal" {
            "internal-"
        } else {
            ""
        };
        let lb = LoadBalancer {
            arn: arn.clone(),
            name: req.name.clone(),
            dns_name: format!(
                "{prefix}{}-{number}.{}.elb.berth.localhost",
                req.name, arns.region
            ),
            created_time: now,
            scheme,
            load_balancer_type: lb_type,
            ip_address_type,
            vpc_id: "vpc-berth".into(),
            subnets,
            security_groups: req.security_groups.clone(),
            state: "active".into(),
        };
        self.load_balancers.push(lb.clone());
        self.attributes
            .insert(arn.clone(), attributes::load_balancer_defaults());
        self.set_initial_tags(&arn, &req.tags);
        Ok(lb)
    }

    /// DescribeLoadBalancers: all, or those named by ARN or name (every one must exist).
    pub fn describe_load_balancers(
        &self,
        req: &DescribeLoadBalancersRequest,
    ) -> Result<Vec<LoadBalancer>, ElbError> {
        if !req.load_balancer_arns.is_empty() && !req.names.is_empty() {
            return Err(ElbError::field(
                "Names",
                "either LoadBalancerArns or Names was expected, found both",
            ));
        }
        if !req.load_balancer_arns.is_empty() {
            return req
                .load_balancer_arns
                .iter()
                .map(|arn| self.load_balancer(arn).cloned())
                .collect();
        }
        if !req.names.is_empty() {
            return req
                .names
                .iter()
                .map(|name| {
                    self.load_balancers
                        .iter()
                        .find(|lb| lb.name == *name)
                        .cloned()
                        .ok_or_else(|| ElbError::LoadBalancerNotFound(name.clone()))
                })
                .collect();
        }
        Ok(self.load_balancers.clone())
    }

    /// DeleteLoadBalancer: removes it with its listeners and their rules. Deleting one that does
    /// not exist succeeds, as in AWS; deletion protection refuses.
    pub fn delete_load_balancer(&mut self, load_balancer_arn: &str) -> Result<(), ElbError> {
        if self.load_balancer(load_balancer_arn).is_err() {
            return Ok(());
        }
        if self.attribute(load_balancer_arn, "deletion_protection.enabled") == Some("true") {
            return Err(ElbError::OperationNotPermitted(format!(
                "Load balancer '{load_balancer_arn}' cannot be deleted because deletion protection is enabled"
            )));
        }
        let listener_arns: Vec<String> = self
            .listeners
            .iter()
            .filter(|l| l.load_balancer_arn == load_balancer_arn)
            .map(|l| l.arn.clone())
            .collect();
        for arn in &listener_arns {
            self.remove_listener(arn);
        }
        self.load_balancers.retain(|lb| lb.arn != load_balancer_arn);
        self.forget(load_balancer_arn);
        Ok(())
    }

    /// DescribeLoadBalancerAttributes.
    pub fn describe_load_balancer_attributes(
        &self,
        load_balancer_arn: &str,
    ) -> Result<Vec<Attribute>, ElbError> {
        self.load_balancer(load_balancer_arn)?;
        Ok(self.attribute_list(load_balancer_arn))
    }

    /// ModifyLoadBalancerAttributes: sets the given keys, returns all attributes.
    pub fn modify_load_balancer_attributes(
        &mut self,
        req: &ModifyAttributesRequest,
    ) -> Result<Vec<Attribute>, ElbError> {
        self.load_balancer(&req.resource_arn)?;
        check(attributes::validate_load_balancer(&req.attributes))?;
        self.set_attributes(&req.resource_arn, &req.attributes);
        Ok(self.attribute_list(&req.resource_arn))
    }

    pub(crate) fn attribute_list(&self, arn: &str) -> Vec<Attribute> {
        self.attributes
            .get(arn)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| Attribute {
                        key: k.clone(),
                        value: v.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    pub(crate) fn set_attributes(&mut self, arn: &str, attributes: &[Attribute]) {
        let entry = self.attributes.entry(arn.to_string()).or_default();
        for a in attributes {
            entry.insert(a.key.clone(), a.value.clone());
        }
    }
}
