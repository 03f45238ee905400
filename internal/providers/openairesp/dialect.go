package openairesp

// dialect is how one provider's Responses API differs from OpenAI's.
type dialect struct {
	// models maps catalog model names (provider_model) to the API's
	// model ids, where they differ; other names go out as they are.
	models map[string]string
	// extras are the chat pass-through fields (chat.Request.Extra) the
	// API takes at its top level under the same name. The others steer
	// only sampling or logging (seed, penalties, logit_bias, logprobs)
	// and are dropped: a strict API refuses what it does not know.
	extras map[string]bool
	// agentAPI: Perplexity's Agent API (see perplexity).
	agentAPI bool
	// chatFallback: an endpoint whose Responses path does not exist is
	// spoken to in the provider's older Chat Completions API
	// (chatfallback.go).
	chatFallback bool
}

// openAI is OpenAI's own Responses API, and the default for providers that
// follow it (xAI).
var openAI = dialect{
	extras: map[string]bool{"parallel_tool_calls": true, "metadata": true, "prompt_cache_key": true,
		"safety_identifier": true, "service_tier": true},
}

// perplexity is Perplexity's Agent API (POST /v1/responses, an alias of
// /v1/agent), checked against docs.perplexity.ai (API reference "Create
// Response", the Sonar migration guide) and a live capture of its answers:
//
//   - Model ids are provider/model ("perplexity/sonar", "openai/gpt-5.4");
//     the catalog names Perplexity's own model as its Sonar API did
//     ("sonar"), mapped here. There is no "perplexity/sonar-pro".
//   - Every request offers the web_search tool: the Sonar API searched on
//     each request, the Agent API searches only when the tool is offered
//     (a preset bundles it). The client's preset, web_search_options
//     (search_context_size, user_location: on the tool) and max_tool_calls
//     are sent (chat.Request.ProviderOptions); max_tool_calls is
//     chat.MaxServerToolCalls unless the client asked for fewer.
//   - The API refuses unknown fields (400): response_format stays at the
//     top level in chat's shape (text.format is refused), a forced
//     function is {"name": ...}, images carry no detail, and user, stop,
//     seed, the penalties and logprobs are not sent.
//   - A function_call_output names its function (some models behind the
//     API need it); function calls carry Gemini's thought_signature.
//   - Usage counts each tool invocation (usage.tool_calls_details, billed
//     per call) under billing names: search_web is the web_search tool.
//   - Search results come as search_results output items, not as the
//     Sonar API's top-level citations and search_results; the adapter
//     rebuilds both (chat.Extras).
var perplexity = dialect{
	models:       map[string]string{"sonar": "perplexity/sonar"},
	extras:       map[string]bool{"parallel_tool_calls": true, "metadata": true},
	agentAPI:     true,
	chatFallback: true,
}

// dialectOf is the dialect of the provider named name.
func dialectOf(name string) dialect {
	if name == "perplexity" {
		return perplexity
	}
	return openAI
}
