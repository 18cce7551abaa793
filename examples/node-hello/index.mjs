// An example Node.js function: says hello and returns its event.
// An event {"fail": true} makes it throw; {"sleep_ms": N} makes it wait N ms first.
// Handler index.handler, runtime nodejs20.x.

export const handler = async (event, context) => {
  console.log(`hello from node: ${JSON.stringify(event)}`);
  if (event?.fail) {
    throw new Error("you asked me to fail");
  }
  if (event?.sleep_ms) {
    await new Promise((resolve) => setTimeout(resolve, event.sleep_ms));
  }
  return { message: "hello from node", event, requestId: context.awsRequestId };
};
