/*
 * interfaceName(index): the name of a network interface by its index (if_indextoname: one
 * SIOCGIFNAME ioctl), for the interfaces NFQUEUE and NFLOG report as indev/outdev. Called only
 * for policies with rules that name interfaces (src/engine/kernel-backend.ts).
 */
#include <net/if.h>

#include "addon.h"

napi_value interface_name(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_value result;
  uint32_t index = 0;
  char name[IF_NAMESIZE];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_uint32(env, argv[0], &index) != napi_ok) {
    napi_throw_type_error(env, NULL, "interfaceName(index): index must be a number");
    return NULL;
  }
  if (index == 0 || if_indextoname(index, name) == NULL) {
    napi_get_null(env, &result);
    return result;
  }
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &result);
  return result;
}
