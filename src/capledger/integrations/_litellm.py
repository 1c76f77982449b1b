"""LiteLLM: every entry point of the ``litellm`` module and of a ``litellm.Router`` is guarded
or refused.

LiteLLM sends through several HTTP stacks (httpx, aiohttp, boto), so it is guarded at its
functions, not at the wire:

- **guarded** (held at the worst case, clamped or refused by the policy, settled):
  ``completion`` / ``acompletion`` (chat), ``responses`` / ``aresponses``,
  ``text_completion`` / ``atext_completion`` (legacy completions; ``max_tokens`` 16 when
  absent, sent explicitly since LiteLLM turns the call into a chat call for most
  providers), ``embedding`` / ``aembedding`` and ``batch_completion`` (every request held
  before any is sent); ``moderation`` passes when it is OpenAI's (free);
- **free** (no request, or one no provider bills): helpers, types, settings, reads;
- **refused** with ``UnguardedRequest`` before anything is sent: every other callable
  (images, audio, rerank, batches, fine-tuning, agents, passthrough, the clients and the
  ``Router`` class, and any callable a new LiteLLM release adds), unless
  ``wrap(unguarded=[name])`` lets it through, journaled as a zero hold tagged
  ``unguarded``.

A call LiteLLM may send to another model (``fallbacks=``, ``context_window_fallback_dict``,
``litellm.model_fallbacks``, a router group's deployments and fallback groups) is held at
the most expensive of them for the request as sent.

The model name ``provider/model`` is priced as ``model`` at ``provider`` (``gemini/`` and
``vertex_ai/`` as ``google``). A settled call is priced with LiteLLM's own figure when the
response carries one (``_hidden_params["response_cost"]``, else ``litellm.completion_cost``),
converted through ``str`` to ``Decimal`` and rounded up to the nano-USD; otherwise with
capledger's prices.
"""

from __future__ import annotations

import functools
import inspect
import logging
import re
import sys
import types
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Final, Literal, TypeAlias, TypeVar

from capledger.errors import ConfigurationError, InvalidInput, UnguardedRequest
from capledger.estimate import estimate
from capledger.integrations._calls import CALL_OPTIONS, Endpoint, Prepared, Settings
from capledger.integrations._engine import Cover, Engine, split_options
from capledger.integrations._steps import NO_WIRE, close
from capledger.pricing._pricebook import round_up_usd

__all__ = [
    "LITELLM_ENDPOINT",
    "LiteLLMProxy",
    "LiteLLMRouterProxy",
    "classify",
    "classify_router",
    "litellm_cost",
    "price_name",
]

_LOG = logging.getLogger("capledger.integrations")

Kind: TypeAlias = Literal["guarded", "free", "refused", "unknown"]

#: LiteLLM's provider prefixes that name a genai-prices provider.
_PROVIDERS: Final = {
    "openai": "openai",
    "text-completion-openai": "openai",
    "azure": "azure",
    "anthropic": "anthropic",
    "gemini": "google",
    "vertex_ai": "google",
    "groq": "groq",
    "mistral": "mistral",
    "deepseek": "deepseek",
    "xai": "x-ai",
    "cohere": "cohere",
}
#: The most models one call is held over (the model, its fallbacks, a group's deployments).
MAX_CANDIDATES: Final = 64
#: The most requests one ``batch_completion`` may hold at once.
MAX_BATCH: Final = 1000
#: What the legacy Completions API writes when a request sets no ``max_tokens``.
COMPLETIONS_DEFAULT_MAX_TOKENS: Final = 16


def price_name(model: str) -> tuple[str, str | None]:
    """``provider/model`` -> (``model``, genai-prices provider); other names unchanged."""
    prefix, slash, rest = model.partition("/")
    if slash and prefix in _PROVIDERS:
        return rest, _PROVIDERS[prefix]
    return model, None


def litellm_price_name(module: Any) -> Callable[[str], tuple[str, str | None]]:
    """``price_name``, and for a model named without a provider, the provider LiteLLM would
    send it to (``litellm.get_llm_provider``: ``text-embedding-3-small`` is OpenAI's)."""
    finder = getattr(module, "get_llm_provider", None)

    @functools.lru_cache(maxsize=256)
    def priced(model: str) -> tuple[str, str | None]:
        name, provider = price_name(model)
        if provider is not None or finder is None or "/" in model:
            return name, provider
        try:
            found = finder(model=model)[1]
        except Exception:  # LiteLLM raises for a model it cannot route; price it as named
            return name, None
        return name, _PROVIDERS.get(found) if isinstance(found, str) else None

    return priced


# LiteLLM maps ``max_tokens`` onto every provider; ``max_completion_tokens`` on fewer.
LITELLM_ENDPOINT: Final = Endpoint("chat", ("max_tokens", "max_completion_tokens"), price_name)


def _endpoints(priced: Callable[[str], tuple[str, str | None]]) -> dict[str, Endpoint]:
    """The APIs LiteLLM guards, by shape, with models priced by ``priced``."""
    return {
        "chat": Endpoint("chat", LITELLM_ENDPOINT.limit_keys, priced),
        "responses": Endpoint("responses", ("max_output_tokens",), priced),
        # The legacy Completions API and embeddings: no default output limit is added (16
        # is sent explicitly for the first; the second has no output).
        "completions": Endpoint("completions", ("max_tokens",), priced, sets_limit=False),
        "embeddings": Endpoint("embeddings", (), priced, sets_limit=False),
    }


def _usd(value: object) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        # LiteLLM reports a float: read it through str, as capledger reads every float.
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    if not amount.is_finite() or amount <= 0:
        # 0 is what LiteLLM reports for a model it cannot price: use our prices instead.
        return None
    return round_up_usd(amount)


def litellm_cost(module: Any) -> Callable[[Any], Decimal | None]:
    """A function reading LiteLLM's own cost of a response (``None`` if it gives none).

    Args:
        module: the ``litellm`` module, whose ``completion_cost`` is the fallback.
    """

    def cost(response: Any) -> Decimal | None:
        hidden = getattr(response, "_hidden_params", None)
        if isinstance(hidden, dict):
            found = _usd(hidden.get("response_cost"))
            if found is not None:
                return found
        calculator = getattr(module, "completion_cost", None)
        if calculator is None:
            return None
        try:
            return _usd(calculator(completion_response=response))
        except Exception:  # LiteLLM raises many kinds for a model it cannot price
            _LOG.debug("capledger: litellm.completion_cost failed", exc_info=True)
            return None

    return cost


# --- what each name of litellm is -------------------------------------------------------------
#
# Every public callable of ``litellm`` (and ``litellm.main``) and every public method of a
# ``litellm.Router`` is classified here; tests/integrations/test_integrations_litellm.py
# walks them all and fails on one that is not, so a new LiteLLM release that adds an entry
# point fails that test instead of leaking. At run time an unclassified callable is refused.


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: Guarded by a method of ``LiteLLMProxy`` (``acreate`` is LiteLLM's old name of
#: ``acompletion``; ``moderation`` passes when it is OpenAI's, which is free).
MODULE_GUARDED: Final = _names(
    """
    completion acompletion acreate responses aresponses text_completion atext_completion
    embedding aembedding batch_completion moderation amoderation
    """
)

#: Send billable requests capledger cannot price or bound, or open a way to send them
#: unheld (clients, retries and fallback runners that call the unguarded module).
MODULE_REFUSED: Final = _names(
    """
    aadapter_completion aadapter_generate_content aagent aagent_resume aagent_session
    acode_interpreter_tool acompact_responses acompletion_with_retries acreate_batch
    acreate_container acreate_fine_tuning_job acreate_realtime_client_secret
    acreate_realtime_transcription_session acreate_realtime_translation_client_secret
    acreate_run acreate_sandbox adapter_completion adecisions aextraction agenerate_content
    agent agent_resume agent_session ahealth_check aimage_edit aimage_generation
    aimage_variation aingest allm_passthrough_route anthropic_messages
    anthropic_messages_handler aocr aquery arealtime_calls arealtime_translation_calls
    arerank aresponses_api_with_mcp aresponses_with_retries arun_code arun_thread
    arun_thread_stream arun_tool_loop asearch aspeech async_completion_with_fallbacks
    asystemone atranscription avector_store_file_create avideo_create_character avideo_edit
    avideo_extension avideo_generation avideo_remix batch_completion_models
    batch_completion_models_all_responses bill_first_round_on_failure build_openai_client
    call_with_native_output_fallback check_valid_key compact_responses
    completion_with_fallbacks completion_with_retries config_completion create_batch
    create_container create_fine_tuning_job create_run custom_chat_llm_router decisions
    extraction generate_content image_edit image_generation image_variation ingest
    llm_passthrough_route maybe_run_chat_completion_agentic_loop nlp_cloud_chat_completion ocr
    query realtime_health_check replicate_chat_completion rerank responses_with_retries
    run_server run_thread run_thread_stream run_tool_loop search speech systemone
    transcription vector_store_file_create video_create_character video_edit
    video_extension video_generation video_remix
    LiteLLM Chat Completions AsyncCompletions Router OpenAI AsyncOpenAI DefaultHttpxClient
    DefaultAsyncHttpxClient AssistantStreamManager AsyncAssistantStreamManager
    """
)

#: Send nothing a provider bills: helpers, token counting, prices, settings, reads, lists,
#: deletions, uploads, cancellations, mocks.
MODULE_FREE: Final = _names(
    """
    a_add_message acancel_batch acancel_eval acancel_fine_tuning_job acancel_responses
    acancel_run acount_tokens acreate_agent acreate_assistants acreate_eval acreate_file
    acreate_skill acreate_thread add_known_models add_message add_provider_affinity_header
    add_provider_specific_params_to_optional_params add_system_prompt_to_messages
    adelete_agent adelete_assistant adelete_container adelete_eval adelete_responses
    adelete_run adelete_sandbox adelete_skill admission_input_tokens
    admitted_prompt_token_counter afile_content afile_delete afile_list afile_retrieve
    agent_capabilities aget_agent aget_assistants aget_eval aget_messages aget_responses
    aget_run aget_skill aget_thread alist_agent_versions alist_agents alist_batches
    alist_container_files alist_containers alist_evals alist_fine_tuning_jobs
    alist_input_items alist_runs alist_skills aretrieve_batch aretrieve_container
    aretrieve_fine_tuning_job as_str_mapping async_mock_completion_streaming_obj asyncify
    aupdate_eval aupload_container_file avector_store_file_content avector_store_file_delete
    avector_store_file_list avector_store_file_retrieve avector_store_file_update
    avideo_content avideo_get_character avideo_list avideo_status azure_anthropic_messages_url
    bedrock_mantle_chat_config bedrock_route_for_request bedrock_strict_tools_fallback
    bridge_reasoning_effort calculate_request_duration calculate_retry_after cancel_batch
    cancel_eval cancel_fine_tuning_job cancel_responses cancel_run check_dynamic_azure_params
    client close_litellm_async_clients completion_cost compress
    convert_model_response_to_streaming convert_to_model_response_object cost_per_token
    create_agent create_assistants create_eval create_file create_health_check_response
    create_pretrained_tokenizer create_skill create_thread create_tokenizer custom_prompt
    declared_authenticating_provider decode decode_video_id_with_provider delete_agent
    delete_assistant delete_container delete_eval delete_responses delete_run delete_skill
    deployment_model_info disable_cache drop_params_env_flag drops_unsupported_params
    enable_cache encode ensure_api_route exception_type file_content file_content_streaming
    file_delete file_list file_retrieve filter_out_litellm_params flatten_form_field_values
    for_bedrock_json_tool_retry function_call_prompt get_agent get_api_key_from_env
    get_assistants get_audio_file_for_health_check get_azure_credentials
    get_completion_messages get_configured_request_timeout get_content_from_model_response
    get_eval get_first_chars_messages get_hidden_params get_litellm_gateway_api_key
    get_litellm_params get_llm_provider get_max_tokens get_messages get_model_cost_map
    get_model_info get_modified_max_tokens get_non_default_completion_params
    get_non_default_transcription_params get_openai_credentials get_optional_params
    get_optional_params_add_message get_optional_params_embeddings
    get_optional_params_image_gen get_optional_params_transcription
    get_optional_rerank_params get_provider_affinity_header get_provider_fields
    get_requester_metadata get_response_string get_responses get_run get_secret
    get_secret_bool get_secret_str get_skill get_standard_openai_params get_thread
    get_valid_models get_vertex_ai_model_route header_auth_params
    holds_api_key_secret_reference holds_secret_pointer http2_enabled identify
    invalid_provider_routing_hints_message is_bedrock_pricing_only_model
    is_claude_tool_target is_decisions_model_mode is_explicitly_disabled_factory
    is_hidden_as_retired is_openai_finetune_model is_resent_failure is_xai_batch_results_id
    list_agent_versions list_agents list_batches list_container_files list_containers
    list_evals list_fine_tuning_jobs list_input_items list_runs list_skills
    map_system_message_pt mark_litellm_import_complete may_name_litellm_mcp_gateway
    messages_have_pdf_file_part messages_without_pdf_file_parts mock_completion
    mock_completion_streaming_obj mock_embedding mock_image_generation
    mock_responses_api_response model_group_from_metadata modify_integration
    normalize_drop_params ollama_pt parse_control_options parse_daily_reset_time
    peek_reasoning_summary_aliases per_call_model_info pre_process_non_default_params
    print_verbose prompt_factory raise_if_allowed_tools_tool_choice_unsupported
    raise_if_hosted_tool_choice_unsupported read_config_args reasoning_effort_needs_allowing
    reasoning_effort_with_summary_alias redact_string register_model register_prompt_template
    reject_server_owned_wif_fields reject_server_owned_wif_params remove_index_from_tool_calls
    replayable_responses_input replayable_responses_item resolve_chat_reasoning
    resolve_openai_workload_identity_config response_cost_calculator
    responses_api_bridge_check retrieve_batch retrieve_container retrieve_fine_tuning_job
    run_async_function rust safe_deep_copy server_owned_wif_fields_named
    server_owned_wif_fields_present server_owned_wif_fields_written set_global_bitbucket_config
    set_global_gitlab_config set_global_prompt_directory should_retry
    should_run_mock_completion str_keyed_mapping stream_chunk_builder
    stream_chunk_builder_text_completion stringify_json_tool_call_content
    strip_reasoning_summary_aliases_from_optional_params supports_audio_input
    supports_audio_output supports_box_questions supports_continuation
    supports_function_calling supports_httpx_timeout supports_parallel_function_calling
    supports_pdf_input supports_reasoning supports_response_schema supports_system_messages
    supports_tool_search supports_url_context supports_video_input supports_vision
    supports_web_search timeout token_counter turn_on_debug turn_on_json update_cache
    update_eval update_messages_with_model_file_ids upload_container_file
    validate_and_fix_openai_messages validate_and_fix_openai_tools
    validate_and_fix_thinking_param validate_chat_completion_tool_choice validate_environment
    validate_litellm_params_strictly validate_openai_optional_params
    validate_provider_affinity_header_name vector_store_file_content vector_store_file_delete
    vector_store_file_list vector_store_file_retrieve vector_store_file_update video_content
    video_get_character video_list video_status with_attribution_headers
    with_control_options with_service_target without_bedrock_route_prefix
    BudgetManager Cache DualCache InMemoryCache LLMClientCache RedisCache CustomLogger
    ChunkProcessor CompletionTimeout CustomStreamWrapper InvalidControlOption
    LiteLLMLoggingObj Logging LoggingCallbackManager ProviderSpecificHeaderUtils
    FileContentStreamingResponse FileContentStreamingResult MyLocal Scheduler
    TextCompletionStreamWrapper ModelResponseListIterator ProviderConfigManager
    VectorStoreIndexRegistry VectorStoreRegistry VideoGenerationRequestUtils
    ClaudeCodeOptions CodexOptions DeepAgentsOptions OpenCodeOptions PiOptions
    ToolLoopOptions AssistantEventHandler AsyncAssistantEventHandler AsyncStream Stream Omit
    NotGiven SDKTimeout SDKResponse
    """
)

#: Submodules reachable through the wrapper: exceptions and types only (the others hold
#: the unguarded functions).
_FREE_SUBMODULES: Final = frozenset({"exceptions", "types", "constants"})
#: Modules whose functions and classes do no I/O (typing helpers, decorators, containers).
_PURE_ORIGINS: Final = frozenset(
    {
        "abc",
        "builtins",
        "collections",
        "concurrent",
        "copy",
        "dataclasses",
        "enum",
        "functools",
        "os",
        "pydantic",
        "pydantic_core",
        "types",
        "typing",
        "typing_extensions",
        "zoneinfo",
    }
)
#: LiteLLM's data types (pydantic models, typed dicts) and request transformations.
_DATA_ORIGINS: Final = ("litellm.types.",)

#: Router methods guarded by ``LiteLLMRouterProxy``.
ROUTER_GUARDED: Final = _names(
    """
    completion acompletion embedding aembedding responses aresponses text_completion
    atext_completion amoderation
    """
)

#: Router endpoints that send billable requests capledger cannot price, or send again
#: (streams recovered or retried, health checks, scheduled calls).
ROUTER_REFUSED: Final = _names(
    """
    aadapter_completion aadapter_generate_content aanthropic_messages anthropic_messages
    abatch_completion abatch_completion_fastest_response
    abatch_completion_one_model_multiple_requests acompact_responses acreate_batch
    acreate_container create_container acreate_fine_tuning_job acreate_interaction
    create_interaction acreate_realtime_client_secret acreate_realtime_transcription_session
    acreate_realtime_translation_client_secret adecisions decisions aextraction extraction
    agenerate_content agenerate_content_stream generate_content generate_content_stream
    aguardrail aimage_edit aimage_generation image_generation allm_passthrough_route aocr ocr
    arealtime_calls arealtime_translation_calls arerank arun_thread asearch search aspeech
    asystemone systemone atranscription avector_store_create vector_store_create
    avector_store_file_create vector_store_file_create avector_store_search
    vector_store_search avideo_create_character video_create_character avideo_edit
    video_edit avideo_extension video_extension avideo_generation video_generation
    avideo_remix video_remix schedule_acompletion call make_call health retry_stream
    recover_stream recover_stream_sync from_config
    """
)

#: Router methods that send nothing a provider bills: configuration, routing state,
#: lookups, reads, lists, deletions, uploads and cancellations.
ROUTER_FREE: Final = _names(
    """
    a_add_message acancel_batch acancel_fine_tuning_job acancel_interaction acancel_responses
    cancel_interaction acreate_agent create_agent acreate_assistants acreate_file
    acreate_skill acreate_thread adelete_agent delete_agent adelete_assistant
    adelete_container delete_container adelete_container_file delete_container_file
    adelete_interaction delete_interaction adelete_responses adelete_skill afile_content
    afile_delete afile_list aget_agent get_agent aget_assistants aget_interaction
    get_interaction aget_messages aget_responses aget_skill aget_thread alist_agent_versions
    list_agent_versions alist_agents list_agents alist_batches alist_container_files
    list_container_files alist_containers list_containers alist_fine_tuning_jobs
    alist_input_items alist_skills aretrieve_batch aretrieve_container retrieve_container
    aretrieve_container_file retrieve_container_file aretrieve_container_file_content
    retrieve_container_file_content aretrieve_fine_tuning_job aupload_container_file
    upload_container_file avector_store_delete vector_store_delete
    avector_store_file_content vector_store_file_content avector_store_file_delete
    vector_store_file_delete avector_store_file_list vector_store_file_list
    avector_store_file_retrieve vector_store_file_retrieve avector_store_file_update
    vector_store_file_update avector_store_list vector_store_list avector_store_retrieve
    vector_store_retrieve avector_store_update vector_store_update avideo_content
    video_content avideo_get_character video_get_character avideo_list video_list
    avideo_status video_status priority_header_update
    aapply add_deployment add_optional_pre_call_checks apply apply_default_settings
    are_all_deployments_blocked arefresh_model_info arm_routing_read_prefetch
    async_admit_deployment_turn async_callback_filter_deployments
    async_deployment_callback_on_failure async_get_available_deployment
    async_get_available_deployment_for_pass_through async_get_fully_unhealthy_model_names
    async_get_healthy_deployments async_pre_routing_hook
    async_routing_strategy_pre_call_checks auto_router_capability_violation
    available_guardrail bind_to_request_logging blocked_failure_exempt build
    cached_deployment_model_info cached_model_group_info config_deployments cooldown_event
    cooldown_event_on_own_loop cooled_down count_realtime_session_success delete_deployment
    deployment_callback_on_failure deployment_callback_on_success
    deployment_is_active_for_environment deployment_tracks_usage deployment_usable_by_team
    deployments_for_request deployments_named discard failure_exits flush_cache
    generate_model_id get_all_deployments get_allowed_fails_from_policy
    get_available_deployment get_available_deployment_for_pass_through
    get_available_guardrail get_candidate_model_ids_for_route get_configured_display_name
    get_configured_mode get_configured_service_tiers get_configured_token_limits
    get_credential_deployment get_deployment get_deployment_by_model_group_name
    get_deployment_credentials get_deployment_credentials_with_provider
    get_deployment_model_info get_discovered_model_info get_fully_blocked_model_names
    get_model_access_groups get_model_from_alias get_model_group get_model_group_info
    get_model_group_usage get_model_ids get_model_info get_model_list
    get_model_list_from_model_alias get_model_list_from_routing_groups
    get_model_list_of_routed_group get_model_listing_info get_model_names
    get_num_retries_from_retry_policy get_remaining_model_group_usage
    get_routable_deployments get_routable_upstream_model
    get_router_deployment_budget_limiter get_router_model_info get_routing_group
    get_search_tool_support get_settings get_valid_args has_model_id
    increment_deployment_usage_for_response init_adaptive_router_deployment
    init_auto_router_deployment init_complexity_router_deployment
    init_quality_router_deployment initialize_assistants_endpoint initialize_router_endpoints
    io_token_usage_sync is_deployment_blocked is_model_access_group_for_wildcard_route
    is_recognized_model log_retry map_team_model observe outcome_callbacks
    params_sent_to_deployment per_user_deployment print_deployment python_cooldown
    ran_as_request_deployment register_plugin registry repin_after_success
    replay_model_cost_registrations report_stream_failure report_stream_failure_sync
    report_stream_success report_stream_success_sync reset resolve_model_name_from_model_id
    resolve_served_model_name resolved_litellm_models retire retire_routing_state
    routable_model_group routed_name routing_group_has_alternatives routing_strategy_init
    routing_strategy_pre_call_checks run_routing_cache_sync select
    serve_through_request_logging served_openai_models service_logged
    set_custom_routing_strategy set_model_list set_optional_pre_call_checks
    set_response_headers settings settings_dict should_include_deployment
    should_retry_this_error split_request_priority stream_policy
    sync_deployment_callback_on_success team_model_has_alternatives team_ptu_ceiling
    team_public_model_names_of track_deployment_pick trigger_fallback_cooldown
    update_redis_cache update_settings upsert_deployment validate_fallbacks
    wildcard_route_deployments wildcard_routed_models
    """
)


def _origin(value: object) -> str:
    module = getattr(value, "__module__", None)
    return module if isinstance(module, str) else ""


def _is_data_class(cls: type) -> bool:
    """An exception, enum, pydantic model or typed dict: a class that holds data, no client."""
    if issubclass(cls, BaseException):
        return True
    if issubclass(cls, dict) and hasattr(cls, "__total__"):
        return True  # a TypedDict
    return any(
        base.__name__ in ("BaseModel", "Enum") and _origin(base).startswith(("pydantic", "enum"))
        for base in cls.__mro__
    )


def classify(name: str, value: object) -> Kind:
    """What the attribute ``name`` of the ``litellm`` module is, through the wrapper.

    ``guarded``: a method of ``LiteLLMProxy``. ``free``: data, a free helper, an exception or
    data type, the exceptions and types modules. ``refused``: sends what capledger cannot
    price, or opens a way to send unheld. ``unknown``: a callable not classified here (a
    LiteLLM release newer than this table); the wrapper refuses it.
    """
    if name in MODULE_GUARDED:
        return "guarded"
    if isinstance(value, types.ModuleType):
        return "free" if name in _FREE_SUBMODULES else "refused"
    if name in MODULE_REFUSED:
        return "refused"
    if name in MODULE_FREE:
        return "free"
    if not callable(value):
        return "free"  # a setting, a price map, a constant
    origin = _origin(value)
    if origin.partition(".")[0] in _PURE_ORIGINS:
        return "free"
    if isinstance(value, type):
        if _is_data_class(value) or origin.startswith(_DATA_ORIGINS):
            return "free"
        if origin.startswith("litellm.llms."):
            # A provider's request transformation is free; its handler sends.
            return "free" if name.endswith("Config") else "refused"
    return "unknown"


def classify_router(name: str, value: object) -> Kind:
    """What the attribute ``name`` of a ``litellm.Router`` is, through the wrapper; see
    ``classify``."""
    if name in ROUTER_GUARDED:
        return "guarded"
    if name in ROUTER_REFUSED:
        return "refused"
    if name in ROUTER_FREE or not callable(value):
        return "free"
    return "unknown"


# --- the models a call may reach --------------------------------------------------------------


def _model_names(entries: object) -> list[str]:
    """Model names from a fallbacks list: names, or dicts with a ``model``."""
    found: list[str] = []
    if isinstance(entries, str):
        return [entries]
    if not isinstance(entries, Iterable) or isinstance(entries, Mapping):
        return found
    for entry in entries:
        if isinstance(entry, str):
            found.append(entry)
        elif isinstance(entry, Mapping) and isinstance(entry.get("model"), str):
            found.append(entry["model"])
    return found


def module_candidates(module: Any, model: str, request: Mapping[str, Any]) -> list[str]:
    """Every model ``litellm.completion(model=model, **request)`` may send to.

    The model (through ``litellm.model_alias_map``), its ``fallbacks`` (the request's, else
    ``litellm.model_fallbacks``) and the chain of ``context_window_fallback_dict``.
    """
    aliases = getattr(module, "model_alias_map", None) or {}
    fallbacks = request.get("fallbacks") or getattr(module, "model_fallbacks", None) or ()
    window = request.get("context_window_fallback_dict") or {}
    queue = [model, *_model_names(fallbacks)]
    found: list[str] = []
    while queue and len(found) < MAX_CANDIDATES:
        name = queue.pop(0)
        name = aliases.get(name, name) if isinstance(aliases, Mapping) else name
        if not isinstance(name, str) or name in found:
            continue
        found.append(name)
        if isinstance(window, Mapping) and isinstance(window.get(name), str):
            queue.append(window[name])
    return found


def _wildcard(pattern: str, model: str) -> str | None:
    """The part of ``model`` matched by the ``*`` of ``pattern``, or None if it does not
    match."""
    regex = "^" + ".*?".join(re.escape(part) for part in pattern.split("*")) + "$"
    regex = regex.replace(".*?", "(.*)", 1)
    matched = re.match(regex, model)
    if matched is None:
        return None
    return matched.group(1) if matched.groups() else ""


def _deployment_names(router: Any, group: str) -> list[str]:
    """The model names of the deployments serving ``group`` (wildcard groups included)."""
    names: list[str] = []
    exact = [d for d in _model_list(router) if d.get("model_name") == group]
    chosen = exact
    if not exact:
        chosen = [
            d
            for d in _model_list(router)
            if "*" in str(d.get("model_name", ""))
            and _wildcard(str(d["model_name"]), group) is not None
        ]
    for deployment in chosen:
        params = deployment.get("litellm_params") or {}
        info = deployment.get("model_info") or {}
        name = info.get("base_model") or params.get("base_model") or params.get("model")
        if not isinstance(name, str):
            continue
        if "*" in name:
            matched = _wildcard(str(deployment.get("model_name", "")), group)
            name = name.replace("*", matched if matched is not None else group, 1)
        names.append(name)
    return names


def _model_list(router: Any) -> list[Mapping[str, Any]]:
    registry = getattr(router, "registry", None)
    # LiteLLM 1.110 reads the deployments through registry() (model_list is deprecated).
    listed = registry().all() if callable(registry) else getattr(router, "model_list", None)
    return [entry for entry in listed or () if isinstance(entry, Mapping)]


def _router_setting(router: Any, name: str) -> Any:
    settings = getattr(router, "settings", None)
    if callable(settings):  # LiteLLM 1.110: settings() (the attributes are deprecated)
        return getattr(settings(), name, None)
    return getattr(router, name, None)


def _router_aliases(router: Any) -> Any:
    registry = getattr(router, "registry", None)
    if callable(registry):
        return registry().aliases()
    return getattr(router, "model_group_alias", None)


def _fallback_groups(rules: object, group: str) -> list[str]:
    """The fallback groups a router's rules (``[{group: [fallbacks]}]``) name for
    ``group``, with the ``*`` default."""
    found: list[str] = []
    for rule in rules if isinstance(rules, list | tuple) else ():
        if isinstance(rule, str):
            found.append(rule)  # a per-call list of fallback groups
        elif isinstance(rule, Mapping):
            for key in (group, "*"):
                found.extend(_model_names(rule.get(key)))
    return found


def router_candidates(router: Any, model: str, request: Mapping[str, Any]) -> list[str]:
    """Every model a router may send ``model`` (a group, an alias or a model) to.

    The deployments of the group (through ``model_group_alias``), and those of every
    fallback group (``fallbacks``, ``context_window_fallbacks``,
    ``content_policy_fallbacks``: the router's and the request's), transitively.
    """
    aliases = _router_aliases(router) or {}
    rules: list[object] = []
    for key in ("fallbacks", "context_window_fallbacks", "content_policy_fallbacks"):
        rules.extend(rule for rule in (request.get(key), _router_setting(router, key)) if rule)
    queue = [model]
    seen: set[str] = set()
    found: list[str] = []
    while queue and len(seen) < MAX_CANDIDATES:
        group = queue.pop(0)
        alias = aliases.get(group) if isinstance(aliases, Mapping) else None
        if isinstance(alias, Mapping):
            alias = alias.get("model")
        group = alias if isinstance(alias, str) else group
        if group in seen:
            continue
        seen.add(group)
        deployments = _deployment_names(router, group)
        for name in deployments or [group]:
            if name not in found:
                found.append(name)
        for rule in rules:
            queue.extend(_fallback_groups(rule, group))
    return found


class _Reach:
    """The models one call may reach, and the worst case over them for a request."""

    __slots__ = ("_candidates", "_endpoint", "_settings")

    def __init__(
        self, settings: Settings, endpoint: Endpoint, candidates: Callable[[str], list[str]]
    ) -> None:
        self._settings = settings
        self._endpoint = endpoint
        self._candidates = candidates

    def _estimates(self, model: str, request: Mapping[str, Any]) -> list[tuple[str, Any]]:
        settings = self._settings
        body = {key: value for key, value in request.items() if key not in CALL_OPTIONS}
        endpoint = self._endpoint
        if (
            endpoint.sets_limit
            and settings.default_max_tokens is not None
            and all(body.get(key) is None for key in endpoint.limit_keys)
        ):
            body[endpoint.limit_keys[0]] = settings.default_max_tokens  # as reserve_flow does
        found = []
        for name in self._candidates(model):
            price_model, provider = endpoint.price_name(name)
            est = estimate(
                price_model,
                body,
                settings.provider or provider,
                shape=endpoint.shape,
                pricebook=settings.pricebook,
            )
            found.append((name, est))
        return found

    def endpoint(self, request: Mapping[str, Any]) -> Endpoint:
        """The endpoint whose price names map each model to its most expensive reach."""
        base = self._endpoint
        worst: dict[str, tuple[str, str | None]] = {}

        def priced_as(model: str) -> tuple[str, str | None]:
            if model not in worst:
                reached = self._estimates(model, request)
                name = max(reached, key=lambda pair: pair[1].worst_case_usd)[0]
                worst[model] = base.price_name(name)
            return worst[model]

        return Endpoint(base.shape, base.limit_keys, priced_as, sets_limit=base.sets_limit)

    def cover(self, prepared: Prepared) -> Cover | None:
        """The largest worst case over every model the request as sent may reach."""
        reached = self._estimates(prepared.model, prepared.request)
        if len(reached) < 2:
            return None
        usd = max(est.worst_case_usd for _name, est in reached)
        tokens = max(_held_tokens(est) for _name, est in reached)
        return Cover(usd, tokens)


def _held_tokens(est: Any) -> int:
    extra = getattr(est, "extra_output_tokens", 0)
    return int((est.input_tokens_bound + est.output_tokens_bound + extra) * est.choices)


# --- calling ----------------------------------------------------------------------------------

#: Positional parameters of the guarded functions, in LiteLLM's order.
_MODULE_POSITIONAL: Final = {
    "completion": ("model", "messages"),
    "acompletion": ("model", "messages"),
    "responses": ("input", "model"),
    "aresponses": ("input", "model"),
    "text_completion": ("prompt", "model"),
    "atext_completion": ("prompt", "model"),
    "embedding": ("model", "input"),
    "aembedding": ("model", "input"),
    "batch_completion": ("model", "messages"),
    "moderation": ("input", "model"),
    "amoderation": ("input", "model"),
}
_ROUTER_POSITIONAL: Final = {
    "completion": ("model", "messages"),
    "acompletion": ("model", "messages"),
    "embedding": ("model", "input"),
    "aembedding": ("model", "input"),
    "text_completion": ("model", "prompt"),
    "atext_completion": ("model", "prompt"),
    "responses": (),
    "aresponses": (),
    "amoderation": (),
}


def _bind(
    positional: Mapping[str, tuple[str, ...]],
    name: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> dict[str, Any]:
    """The call's arguments by name (positional ones bound in LiteLLM's order)."""
    names = positional[name]
    if len(args) > len(names):
        raise TypeError(f"{name}() takes at most {len(names)} positional arguments")
    bound = dict(kwargs)
    for key, value in zip(names, args, strict=False):
        if key in bound:
            raise TypeError(f"{name}() got multiple values for argument {key!r}")
        bound[key] = value
    return bound


def _refusal(owner: str, name: str, reason: str) -> UnguardedRequest:
    return UnguardedRequest(
        f"{owner}.{name} is not guarded by capledger, so it was not called: {reason}. "
        f"Pass wrap(..., unguarded=[{name!r}]) to let it through unheld (journaled as "
        "unguarded).",
        endpoint=name,
        reason=reason,
    )


def _reason(name: str, kind: Kind) -> str:
    if name == "Router":
        return "wrap the router itself: capledger.wrap(litellm.Router(...), ledger)"
    if kind == "unknown":
        return "capledger does not know whether it sends a billable request"
    return "it sends requests capledger cannot price or bound"


def _refused_callable(owner: str, name: str, reason: str) -> Callable[..., Any]:
    def refused(*_args: Any, **_kwargs: Any) -> Any:
        raise _refusal(owner, name, reason)

    refused.__name__ = refused.__qualname__ = name
    refused.__doc__ = f"Refused by capledger: {reason}."
    return refused


class _RefusedModule:
    """A submodule of litellm seen through the wrapper: every attribute is refused."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        raise _refusal("litellm", f"{self._name}.{attribute}", "its functions are not guarded")

    def __repr__(self) -> str:
        return f"<litellm.{self._name}, refused by capledger>"


def _free_moderation(request: Mapping[str, Any]) -> bool:
    """Whether a moderation call goes to OpenAI's moderation models, which are free."""
    provider = request.get("custom_llm_provider")
    if provider not in (None, "openai"):
        return False
    model = request.get("model")
    if model is None:
        return True
    if not isinstance(model, str):
        return False
    return model.removeprefix("openai/").startswith(("omni-moderation", "text-moderation"))


#: How an entry point reads its arguments: by name, positional ones bound in LiteLLM's order
#: (``bind``); and for a chat call ``model_list=`` refused (``chat``), for a legacy completion
#: the Completions API's default ``max_tokens`` sent explicitly (``text``).
Binding: TypeAlias = Literal["bind", "chat", "text"]


@dataclass(frozen=True, slots=True)
class _EntryPoint:
    """A guarded function and its async twin (``a`` + ``name``), on the module and a Router."""

    name: str
    #: The key of the endpoint in ``_endpoints`` the call is held at.
    shape: str
    binding: Binding
    #: What the docstrings say after the function's name.
    note: str = ""


#: The guarded entry points the module and Router proxies share. Each row becomes a sync and
#: an async method of both (``_with_entry_points``), so a method body is written once and a
#: new entry point is one row.
_ENTRY_POINTS: Final = (
    _EntryPoint("completion", "chat", "chat"),
    _EntryPoint("responses", "responses", "bind"),
    _EntryPoint("text_completion", "completions", "text", " (legacy completions)"),
    _EntryPoint("embedding", "embeddings", "bind", " (input only)"),
)


def _entry_methods(owner: str, entry: _EntryPoint) -> dict[str, Callable[..., Any]]:
    """The sync and async methods of ``entry``, by name, documented as ``owner``'s."""
    name, twin = entry.name, "a" + entry.name

    # The twins differ only by the ledger they check for and the await.
    def sync(self: _GuardedBase, *args: Any, **kwargs: Any) -> Any:
        endpoint, method, bound, cover = self._ready(entry, name, args, kwargs, self._sync)
        return self._engine.call(endpoint, method, bound, cost=self._cost, cover=cover)

    async def asynchronous(self: _GuardedBase, *args: Any, **kwargs: Any) -> Any:
        endpoint, method, bound, cover = self._ready(entry, twin, args, kwargs, self._async)
        return await self._engine.call(endpoint, method, bound, cost=self._cost, cover=cover)

    sync.__doc__ = f"``{owner}.{name}``{entry.note}, guarded; needs a ``Ledger``."
    asynchronous.__doc__ = f"``{owner}.{twin}``{entry.note}, guarded; needs an ``AsyncLedger``."
    return {name: sync, twin: asynchronous}


_Proxy = TypeVar("_Proxy", bound="_GuardedBase")


def _with_entry_points(cls: type[_Proxy]) -> type[_Proxy]:
    """Give a proxy class the methods of every row of ``_ENTRY_POINTS``."""
    for entry in _ENTRY_POINTS:
        for name, method in _entry_methods(cls._owner, entry).items():
            method.__name__ = name
            method.__qualname__ = f"{cls.__qualname__}.{name}"
            setattr(cls, name, method)
    return cls


class _GuardedBase:
    """What the module and router wrappers share: the engine, the sync/async checks, the
    unguarded journal and the refusal of everything unclassified."""

    __slots__ = ("_cost", "_endpoints", "_engine", "_target")
    _owner: str = "litellm"
    _positional: Mapping[str, tuple[str, ...]] = _MODULE_POSITIONAL

    def __init__(self, target: Any, engine: Engine, module: Any) -> None:
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_engine", engine)
        object.__setattr__(self, "_cost", litellm_cost(module))
        object.__setattr__(self, "_endpoints", _endpoints(litellm_price_name(module)))

    def _classify(self, name: str, value: object) -> Kind:
        raise NotImplementedError

    def _candidates(self, model: str, request: Mapping[str, Any]) -> list[str]:
        raise NotImplementedError

    def __getattr__(self, name: str) -> Any:
        if name in _GuardedBase.__slots__:
            raise AttributeError(name)
        value = getattr(self._target, name)
        if name.startswith("__") and name.endswith("__"):
            if callable(value):
                raise AttributeError(f"{name} is not available through the capledger wrapper")
            return value
        if name in self._engine.settings.unguarded:
            return self._unguarded(name, value)
        kind = self._classify(name, value)
        if kind == "free":
            return value
        if isinstance(value, types.ModuleType):
            return _RefusedModule(name)
        return _refused_callable(self._owner, name, _reason(name, kind))

    def __setattr__(self, name: str, value: Any) -> None:
        # litellm is configured by setting its attributes: set them on the module.
        setattr(self._target, name, value)

    def __dir__(self) -> list[str]:
        return sorted({*dir(self._target), *type(self).__dict__})

    def __repr__(self) -> str:
        return f"<capledger guarded {self._target!r}>"

    def _sync(self, name: str) -> None:
        if self._engine.is_async:
            raise ConfigurationError(
                f"{self._owner}.{name} is synchronous and this wrapper holds an AsyncLedger: "
                f"call its async twin, or wrap {self._owner} with a Ledger"
            )

    def _async(self, name: str) -> None:
        if not self._engine.is_async:
            raise ConfigurationError(
                f"{self._owner}.{name} is asynchronous and needs an AsyncLedger: call its sync "
                f"twin on this Ledger wrapper, or wrap {self._owner} with an AsyncLedger"
            )

    def _unguarded(self, name: str, function: Any) -> Any:
        """``function`` let through unheld, each call journaled as a zero hold."""
        if not callable(function) or isinstance(function, type | types.ModuleType):
            return function
        engine = self._engine
        if inspect.iscoroutinefunction(function):

            async def journaled_async(*args: Any, **kwargs: Any) -> Any:
                self._async(name)
                return await engine.journal(name, function, args, kwargs)

            return journaled_async

        def journaled(*args: Any, **kwargs: Any) -> Any:
            self._sync(name)
            return engine.journal(name, function, args, kwargs)

        return journaled

    def _plan(
        self, endpoint: Endpoint, kwargs: dict[str, Any]
    ) -> tuple[Endpoint, Callable[[Prepared], Cover | None] | None]:
        """The endpoint to hold ``kwargs`` at, and the cover of the other models it may
        reach (fallbacks, deployments); checks the call can be held at all."""
        model = kwargs.get("model")
        if not isinstance(model, str) or self._candidates(model, kwargs) == [model]:
            return endpoint, None
        reach = _Reach(self._engine.settings, endpoint, lambda name: self._candidates(name, kwargs))
        return reach.endpoint(kwargs), reach.cover

    def _ready(
        self,
        entry: _EntryPoint,
        name: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        check: Callable[[str], None],
    ) -> tuple[Endpoint, Any, dict[str, Any], Callable[[Prepared], Cover | None] | None]:
        """What the guarded call ``name`` (``entry`` or its twin) needs: the endpoint to hold
        it at, the target's function, the arguments by name and the cover of the other
        models it may reach.

        The arguments are read first, so a malformed call (a ``TypeError``, a refused
        ``model_list``) says so whatever the ledger; then ``check`` checks the ledger is of
        the kind ``name`` needs.
        """
        if entry.binding == "chat":
            bound = self._completion_kwargs(name, args, kwargs)
        else:
            bound = _bind(self._positional, name, args, kwargs)
            if entry.binding == "text":
                bound = self._text_kwargs(bound)
        check(name)
        endpoint, cover = self._plan(self._endpoints[entry.shape], bound)
        return endpoint, getattr(self._target, name), bound, cover

    def _moderation(self, name: str, kwargs: dict[str, Any], *, free: bool) -> Any:
        """The function to call for a moderation: itself when ``free`` (OpenAI's), else
        journaled if ``unguarded`` names it, else refused."""
        function = getattr(self._target, name)
        if name in self._engine.settings.unguarded:
            return self._unguarded(name, function)
        if not free:
            raise _refusal(
                self._owner, name, "only OpenAI's moderation models are known to be free"
            )
        split_options(kwargs)
        return function

    def _moderate(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Call the module's moderation ``name`` if it is free (an awaitable for
        ``amoderation``, which its method awaits)."""
        bound = _bind(self._positional, name, args, kwargs)
        return self._moderation(name, bound, free=_free_moderation(bound))(**bound)

    def _completion_kwargs(
        self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        bound = _bind(self._positional, name, args, kwargs)
        if bound.get("model_list") is not None:
            raise _refusal(
                self._owner,
                f"{name}(model_list=...)",
                "it sends the request to every deployment of the list at once",
            )
        return bound

    @staticmethod
    def _text_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
        # LiteLLM turns a text completion into a chat call for most providers, where no
        # max_tokens may mean far more than the Completions API's 16: send the 16.
        if kwargs.get("max_tokens") is None:
            kwargs["max_tokens"] = COMPLETIONS_DEFAULT_MAX_TOKENS
        return kwargs


@_with_entry_points
class LiteLLMProxy(_GuardedBase):
    """The ``litellm`` module, with every entry point guarded or refused.

    The sync functions need a ``Ledger``, the ``a``-prefixed ones an ``AsyncLedger`` (the
    other raises ``ConfigurationError``). Free attributes (helpers, types, settings) are the
    module's; setting an attribute sets it on the module. See the module docstring.
    """

    __slots__ = ()

    def __init__(self, module: Any, engine: Engine) -> None:
        super().__init__(module, engine, module)

    def _classify(self, name: str, value: object) -> Kind:
        return classify(name, value)

    def _candidates(self, model: str, request: Mapping[str, Any]) -> list[str]:
        return module_candidates(self._target, model, request)

    async def acreate(self, *args: Any, **kwargs: Any) -> Any:
        """``litellm.acreate`` (LiteLLM's old name of ``acompletion``), guarded."""
        return await self.acompletion(*args, **kwargs)

    def moderation(self, *args: Any, **kwargs: Any) -> Any:
        """``litellm.moderation``: passed to OpenAI's free moderation models, else refused."""
        return self._moderate("moderation", args, kwargs)

    async def amoderation(self, *args: Any, **kwargs: Any) -> Any:
        """``litellm.amoderation``; see ``moderation``."""
        return await self._moderate("amoderation", args, kwargs)

    def batch_completion(self, *args: Any, **kwargs: Any) -> list[Any]:
        """``litellm.batch_completion``: each message list is its own guarded call.

        Every request is held before any is sent; if one cannot be, the others are
        released and the refusal raised, with nothing sent. The requests are then sent in
        parallel (``max_workers`` threads, 100 by default); as in LiteLLM, a failed one is
        returned as its exception, in order.

        Raises:
            BudgetExceeded: one of the requests does not fit (nothing was sent).
            InvalidInput: ``messages`` is not a list of message lists, or holds more than
                ``MAX_BATCH``.
        """
        self._sync("batch_completion")
        bound = self._completion_kwargs("batch_completion", args, kwargs)
        batches = bound.pop("messages", None)
        max_workers = bound.pop("max_workers", None) or 100
        if not isinstance(batches, list) or not all(isinstance(item, list) for item in batches):
            raise InvalidInput("batch_completion needs messages= as a list of message lists")
        if len(batches) > MAX_BATCH:
            raise InvalidInput(f"batch_completion holds at most {MAX_BATCH} requests at once")
        options = split_options(bound)
        request_id = options.pop("capledger_request_id", None)
        held: list[tuple[Endpoint, Prepared, Any]] = []
        try:
            for index, messages in enumerate(batches):
                one = {**bound, **options, "messages": messages}
                if request_id is not None:
                    one["capledger_request_id"] = f"{request_id}:{index}"
                endpoint, cover = self._plan(self._endpoints["chat"], one)
                prepared, hold = self._engine.hold(endpoint, one, cover=cover)
                held.append((endpoint, prepared, hold))
        except BaseException:
            for _endpoint, _prepared, hold in held:
                NO_WIRE.run(close(hold, None, quiet=True))
            raise
        if not held:
            return []
        send = self._target.completion
        with ThreadPoolExecutor(max_workers=max(1, min(int(max_workers), len(held)))) as pool:
            futures = [
                pool.submit(self._engine.send, endpoint, send, prepared, hold, cost=self._cost)
                for endpoint, prepared, hold in held
            ]
        results: list[Any] = []
        for future in futures:
            try:
                results.append(future.result())
            except Exception as error:
                results.append(error)
        return results


@_with_entry_points
class LiteLLMRouterProxy(_GuardedBase):
    """A ``litellm.Router`` with every endpoint guarded or refused.

    A model group is held at the most expensive model it may reach for the request: any of
    its deployments, and those of its fallback groups (the router's ``fallbacks``,
    ``context_window_fallbacks`` and ``content_policy_fallbacks``, and the call's). Every
    other attribute is the router's, classified like the module's (``classify_router``).
    """

    __slots__ = ()
    _owner = "Router"
    _positional = _ROUTER_POSITIONAL

    def __init__(self, router: Any, engine: Engine) -> None:
        # A router exists only once litellm was imported: its cost and provider lookups
        # are there.
        super().__init__(router, engine, sys.modules.get("litellm"))

    def _classify(self, name: str, value: object) -> Kind:
        return classify_router(name, value)

    def _candidates(self, model: str, request: Mapping[str, Any]) -> list[str]:
        return router_candidates(self._target, model, request)

    async def amoderation(self, **kwargs: Any) -> Any:
        """``Router.amoderation``: passed when every model it may reach is OpenAI's free
        moderation, else refused."""
        model = kwargs.get("model")
        reach = router_candidates(self._target, model, kwargs) if isinstance(model, str) else []
        free = bool(reach) and all(_free_moderation({"model": name}) for name in reach)
        return await self._moderation("amoderation", kwargs, free=free)(**kwargs)
