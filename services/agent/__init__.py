"""AgentService, HeartbeatService and AgentAdminService."""
