"""What each name of the ``litellm`` module and of a ``litellm.Router`` is, through the wrapper:
guarded, free, refused, or unknown (refused too).

Every public callable of ``litellm`` (and ``litellm.main``) and every public method of a
``litellm.Router`` is classified here; tests/integrations/test_integrations_litellm.py walks
them all and fails on one that is not, so a new LiteLLM release that adds an entry point
fails that test instead of leaking. At run time an unclassified callable is refused.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Mapping
from typing import Any, Final, Literal, TypeAlias

from capledger.errors import UnguardedRequest

__all__ = [
    "MODULE_FREE",
    "MODULE_GUARDED",
    "MODULE_REFUSED",
    "ROUTER_FREE",
    "ROUTER_GUARDED",
    "ROUTER_REFUSED",
    "Kind",
    "RefusedModule",
    "classify",
    "classify_router",
    "free_moderation",
    "refusal",
    "refusal_reason",
    "refused_callable",
]

Kind: TypeAlias = Literal["guarded", "free", "refused", "unknown"]


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


def refusal(owner: str, name: str, reason: str) -> UnguardedRequest:
    return UnguardedRequest(
        f"{owner}.{name} is not guarded by capledger, so it was not called: {reason}. "
        f"Pass wrap(..., unguarded=[{name!r}]) to let it through unheld (journaled as "
        "unguarded).",
        endpoint=name,
        reason=reason,
    )


def refusal_reason(name: str, kind: Kind) -> str:
    if name == "Router":
        return "wrap the router itself: capledger.wrap(litellm.Router(...), ledger)"
    if kind == "unknown":
        return "capledger does not know whether it sends a billable request"
    return "it sends requests capledger cannot price or bound"


def refused_callable(owner: str, name: str, reason: str) -> Callable[..., Any]:
    def refused(*_args: Any, **_kwargs: Any) -> Any:
        raise refusal(owner, name, reason)

    refused.__name__ = refused.__qualname__ = name
    refused.__doc__ = f"Refused by capledger: {reason}."
    return refused


class RefusedModule:
    """A submodule of litellm seen through the wrapper: every attribute is refused."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        raise refusal("litellm", f"{self._name}.{attribute}", "its functions are not guarded")

    def __repr__(self) -> str:
        return f"<litellm.{self._name}, refused by capledger>"


def free_moderation(request: Mapping[str, Any]) -> bool:
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
