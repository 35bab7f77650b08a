// Parse an Adaptive Card with the official adaptivecards library and print every validation event.
// stdin: the card JSON; stdout: {"events": [{"phase", "event", "message"}]}. Used by the card tests.
const AC = require("../../node_modules/adaptivecards/dist/adaptivecards.js");

let input = "";
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const payload = JSON.parse(input);
  const context = new AC.SerializationContext(AC.Versions.v1_5);
  const card = new AC.AdaptiveCard();
  card.parse(payload, context);
  const events = [];
  for (let i = 0; i < context.eventCount; i++) {
    const e = context.getEventAt(i);
    events.push({ phase: e.phase, event: e.event, message: e.message });
  }
  const results = card.validateProperties();
  for (const e of results.validationEvents || []) {
    events.push({ phase: e.phase, event: e.event, message: e.message });
  }
  process.stdout.write(JSON.stringify({ events, version: card.version ? card.version.toString() : null }));
});
