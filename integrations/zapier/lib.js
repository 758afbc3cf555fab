'use strict';

// url builds an address on the connection's Sous server.
const url = (bundle, path) => String(bundle.authData.base_url || '').replace(/\/+$/, '') + path;

// addApiKey sends the connection's API key with every request.
const addApiKey = (request, z, bundle) => {
  if (bundle.authData && bundle.authData.api_key) {
    request.headers = request.headers || {};
    request.headers['X-API-Key'] = bundle.authData.api_key;
  }
  return request;
};

// explainErrors turns Sous's JSON errors into messages a Zap shows; a 401
// asks the user to reconnect. A request made with skipThrowForStatus
// looks at its answer itself (throwFor for what it does not expect).
const explainErrors = (response, z) => {
  if (response.skipThrowForStatus) {
    return response;
  }
  return throwFor(response, z);
};

// throwFor returns a response below 400 and throws for any other.
const throwFor = (response, z) => {
  if (response.status < 400) {
    return response;
  }
  let message = `Sous answered ${response.status}`;
  try {
    const e = JSON.parse(response.content).error;
    if (e && e.message) {
      message = `${e.message} (${e.code})`;
    }
  } catch (_) {
    // not JSON: the status says enough
  }
  if (response.status === 401) {
    throw new z.errors.ExpiredAuthError(message);
  }
  throw new z.errors.Error(message, response.status === 400 ? 'InvalidData' : 'SousError', response.status);
};

module.exports = { url, addApiKey, explainErrors, throwFor };
