//! CreateListener, DescribeListeners, ModifyListener and DeleteListener.

use crate::error::check;
use crate::requests::{CreateListenerRequest, DescribeListenersRequest, ModifyListenerRequest};
use crate::types::{Action, Certificate, Listener};
use crate::{validate, ElbError, ElbState};
use berth_model::{Arns, FieldErrors};

/// The SSL policy HTTPS listeners get when none is given.
pub const DEFAULT_SSL_POLICY: &str = "ELBSecurityPolicy-2016-08";

/// Checks protocol and certificates together: HTTP or HTTPS, and HTTPS only with a certificate.
fn protocol_and_certificates(
    protocol: &str,
    certificates: &[Certificate],
    errors: &mut FieldErrors,
) {
    match protocol {
        "HTTP" => {
            if !certificates.is_empty() {
                errors.push(
                    "Certificates",
                    "no certificates were expected for an HTTP listener",
                );
            }
        }
        "HTTPS" => {
            if certificates.is_empty() {
                errors.push(
                    "Certificates",
                    "an HTTPS listener needs a certificate (Certificates), found none",
                );
            }
        }
        other => errors.push(
            "Protocol",
            format!("HTTP or HTTPS was expected for an application load balancer, found '{other}'"),
        ),
    }
    for (i, c) in certificates.iter().enumerate() {
        if c.certificate_arn.is_empty() {
            errors.push(
                format!("Certificates[{i}].CertificateArn"),
                "a certificate ARN was expected, found none",
            );
        } else if crate::proxy_config::certificate_files(&c.certificate_arn).is_none() {
            errors.push(
                format!("Certificates[{i}].CertificateArn"),
                format!(
                    "file://<cert.pem>|<key.pem> or arn:berth:acm:file:<cert.pem>:<key.pem> was expected, found '{}'",
                    c.certificate_arn
                ),
            );
        }
    }
}

impl ElbState {
    /// Fails unless every target group the actions forward to exists and is not used by another
    /// load balancer (an ALB target group serves one load balancer).
    pub(crate) fn check_action_targets(
        &self,
        load_balancer_arn: &str,
        actions: &[Action],
    ) -> Result<(), ElbError> {
        for action in actions {
            for tg in Self::action_target_groups(action) {
                self.target_group(tg)?;
                if let Some(other) = self
                    .target_group_load_balancers(tg)
                    .into_iter()
                    .find(|lb| lb != load_balancer_arn)
                {
                    return Err(ElbError::TargetGroupAssociationLimit(format!(
                        "Target group '{tg}' is already associated with load balancer '{other}'; a target group serves one load balancer"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Fails when the port is taken on this host: berth's load balancers share one address, so a
    /// port serves one listener across all of them.
    fn check_port_free(&self, port: u16, except_listener: Option<&str>) -> Result<(), ElbError> {
        match self.listeners.iter().find(|l| l.port == port && Some(l.arn.as_str()) != except_listener) {
            Some(l) => Err(ElbError::DuplicateListener(format!(
                "A listener already exists on port {port} (listener '{}'; berth's load balancers share one address, so each port serves one listener)",
                l.arn
            ))),
            None => Ok(()),
        }
    }

    /// CreateListener: an HTTP (or HTTPS with a certificate) listener with its default actions.
    pub fn create_listener(
        &mut self,
        arns: &Arns,
        req: &CreateListenerRequest,
    ) -> Result<Listener, ElbError> {
        let lb = self.load_balancer(&req.load_balancer_arn)?.clone();
        let mut errors = FieldErrors::default();
        let protocol = req.protocol.clone().unwrap_or_else(|| "HTTP".into());
        protocol_and_certificates(&protocol, &req.certificates, &mut errors);
        let port = match req.port {
            Some(p) => validate::port("Port", p, &mut errors),
            None => {
                errors.push("Port", "a port from 1 to 65535 was expected, found none");
                0
            }
        };
        let default_actions =
            validate::actions("DefaultActions", &req.default_actions, &mut errors);
        validate::tags(&req.tags, &mut errors);
        check(errors)?;
        Self::check_duplicate_tag_keys(&req.tags)?;
        self.check_port_free(port, None)?;
        self.check_action_targets(&lb.arn, &default_actions)?;
        let lb_path = lb
            .arn
            .split_once(":loadbalancer/")
            .map(|(_, p)| p.to_string())
            .unwrap_or_default();
        let id = self.new_id();
        let arn = arns.elb(&format!("listener/{lb_path}/{id}"));
        let rule_id = self.new_id();
        let default_rule_arn = arns.elb(&format!("listener-rule/{lb_path}/{id}/{rule_id}"));
        let ssl_policy = req
            .ssl_policy
            .clone()
            .or_else(|| (protocol == "HTTPS").then(|| DEFAULT_SSL_POLICY.to_string()));
        let listener = Listener {
            arn: arn.clone(),
            load_balancer_arn: lb.arn.clone(),
            port,
            protocol,
            ssl_policy,
            certificates: req.certificates.clone(),
            default_actions,
            default_rule_arn,
        };
        self.listeners.push(listener.clone());
        self.set_initial_tags(&arn, &req.tags);
        Ok(listener)
    }

    /// DescribeListeners: those of a load balancer, or those named by ARN.
    pub fn describe_listeners(
        &self,
        req: &DescribeListenersRequest,
    ) -> Result<Vec<Listener>, ElbError> {
        match (&req.load_balancer_arn, req.listener_arns.is_empty()) {
            (Some(_), false) => Err(ElbError::field(
                "ListenerArns",
                "either LoadBalancerArn or ListenerArns was expected, found both",
            )),
            (Some(lb), true) => {
                self.load_balancer(lb)?;
                let mut listeners: Vec<Listener> = self
                    .listeners
                    .iter()
                    .filter(|l| l.load_balancer_arn == *lb)
                    .cloned()
                    .collect();
                listeners.sort_by_key(|l| l.port);
                Ok(listeners)
            }
            (None, false) => req
                .listener_arns
                .iter()
                .map(|arn| self.listener(arn).cloned())
                .collect(),
            (None, true) => Err(ElbError::field(
                "LoadBalancerArn",
                "a LoadBalancerArn or ListenerArns was expected, found neither",
            )),
        }
    }

    /// ModifyListener: changes port, protocol, certificates, SSL policy or default actions.
    pub fn modify_listener(&mut self, req: &ModifyListenerRequest) -> Result<Listener, ElbError> {
        let current = self.listener(&req.listener_arn)?.clone();
        let mut errors = FieldErrors::default();
        let protocol = req
            .protocol
            .clone()
            .unwrap_or_else(|| current.protocol.clone());
        let certificates = req.certificates.clone().unwrap_or_else(|| {
            if protocol == "HTTP" {
                Vec::new()
            } else {
                current.certificates.clone()
            }
        });
        protocol_and_certificates(&protocol, &certificates, &mut errors);
        let port = match req.port {
            Some(p) => validate::port("Port", p, &mut errors),
            None => current.port,
        };
        let default_actions = match &req.default_actions {
            Some(actions) => validate::actions("DefaultActions", actions, &mut errors),
            None => current.default_actions.clone(),
        };
        check(errors)?;
        self.check_port_free(port, Some(&current.arn))?;
        self.check_action_targets(&current.load_balancer_arn, &default_actions)?;
        let ssl_policy = match (&req.ssl_policy, protocol.as_str()) {
            (_, "HTTP") => None,
            (Some(p), _) => Some(p.clone()),
            (None, _) => current
                .ssl_policy
                .clone()
                .or_else(|| Some(DEFAULT_SSL_POLICY.to_string())),
        };
        let listener = Listener {
            port,
            protocol,
            certificates,
            default_actions,
            ssl_policy,
            ..current
        };
        if let Some(slot) = self.listeners.iter_mut().find(|l| l.arn == listener.arn) {
            *slot = listener.clone();
        }
        Ok(listener)
    }

    /// DeleteListener: removes it with its rules.
    pub fn delete_listener(&mut self, listener_arn: &str) -> Result<(), ElbError> {
        self.listener(listener_arn)?;
        self.remove_listener(listener_arn);
        Ok(())
    }

    /// Removes a listener, its rules and their tags.
    pub(crate) fn remove_listener(&mut self, listener_arn: &str) {
        let rule_arns: Vec<String> = self
            .rules
            .iter()
            .filter(|r| r.listener_arn == listener_arn)
            .map(|r| r.arn.clone())
            .collect();
        for arn in &rule_arns {
            self.forget(arn);
        }
        self.rules.retain(|r| r.listener_arn != listener_arn);
        self.listeners.retain(|l| l.arn != listener_arn);
        self.forget(listener_arn);
    }
}
