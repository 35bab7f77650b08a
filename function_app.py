"""closedloop: the Functions entry point. Wiring only; everything else loads on first use."""
import azure.functions as func

from shared.api.approval_routes import bp as approvals
from shared.api.catalog_routes import bp as catalog
from shared.api.docs_routes import bp as docs
from shared.api.feedback_routes import bp as feedback
from shared.api.findings_routes import bp as findings
from shared.api.learning_routes import bp as learning
from shared.api.mcp_tools import bp as mcp
from shared.api.measure_routes import bp as measurement
from shared.api.opportunity_routes import bp as opportunities
from shared.api.rule_routes import bp as rules
from shared.api.stage_triggers import bp as stages

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(findings)
app.register_functions(opportunities)
app.register_functions(catalog)
app.register_functions(rules)
app.register_functions(approvals)
app.register_functions(feedback)
app.register_functions(measurement)
app.register_functions(learning)
app.register_functions(docs)
app.register_functions(mcp)
app.register_functions(stages)
