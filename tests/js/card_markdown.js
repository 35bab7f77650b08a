// Render the Markdown of every TextBlock and Fact of an Adaptive Card as the official adaptivecards library
// does (AdaptiveCard.applyMarkdown, with markdown-it as its processor; linkify on, since Teams turns bare
// URLs into links too). stdin: the card JSON; stdout: {"texts": [{"where", "text", "html"}], "events": [...]}.
const AC = require("../../node_modules/adaptivecards/dist/adaptivecards.js");
const markdownit = require("../../node_modules/markdown-it");

// applyMarkdown calls window.markdownit() when no onProcessMarkdown handler is set.
globalThis.window = { markdownit: () => markdownit({ linkify: true }) };

function walk(element, where, out) {
  if (element instanceof AC.TextBlock) {
    out.push({ where, text: element.text });
  } else if (element instanceof AC.FactSet) {
    element.facts.forEach((fact, i) => {
      out.push({ where: `${where}.facts[${i}].title`, text: fact.name });
      out.push({ where: `${where}.facts[${i}].value`, text: fact.value });
    });
  }
  if (typeof element.getItemCount === "function") {
    for (let i = 0; i < element.getItemCount(); i++) walk(element.getItemAt(i), `${where}[${i}]`, out);
  }
}

let input = "";
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const context = new AC.SerializationContext(AC.Versions.v1_5);
  const card = new AC.AdaptiveCard();
  card.parse(JSON.parse(input), context);
  const events = [];
  for (let i = 0; i < context.eventCount; i++) events.push(context.getEventAt(i).message);
  const texts = [];
  walk(card, "body", texts);
  for (const t of texts) {
    const result = AC.AdaptiveCard.applyMarkdown(t.text || "");
    t.html = result.didProcess ? result.outputHtml : null;
  }
  process.stdout.write(JSON.stringify({ texts, events }));
});
