//! berth-elb: the ELBv2 model and its operations (pure logic).
